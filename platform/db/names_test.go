package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// These checks run before any connection is made: a schema name goes into
// DDL, so a bad one must never reach the database.
func TestProvisionAndOpenModule_RefuseUnsafeSchemaNames(t *testing.T) {
	t.Parallel()
	for _, schema := range []string{"", "Users", "1users", "users; DROP SCHEMA public", `users"`, "us-ers", strings.Repeat("a", 42)} {
		if err := Provision(context.Background(), nil, schema); err == nil || !strings.Contains(err.Error(), "invalid schema name") {
			t.Errorf("Provision(%q) = %v, want invalid schema name", schema, err)
		}
		if _, err := OpenModule(context.Background(), "postgres://127.0.0.1:1/x", schema, 1); err == nil || !strings.Contains(err.Error(), "invalid schema name") {
			t.Errorf("OpenModule(%q) = %v, want invalid schema name", schema, err)
		}
	}
	for _, schema := range []string{"users", "products", "order_items", "a" + strings.Repeat("b", 40)} {
		if !identifier.MatchString(schema) {
			t.Errorf("schema name %q refused", schema)
		}
	}
}

func TestQuoteLiteral_DoublesQuotes(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"modshop_users": "'modshop_users'",
		"o'brien":       "'o''brien'",
		"''":            "''''''",
		"":              "''",
	}
	for in, want := range tests {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRoleFor_IsPerSchema(t *testing.T) {
	t.Parallel()
	if RoleFor("users") != "modshop_users" || RoleFor("users") == RoleFor("orders") {
		t.Fatalf("RoleFor(users) = %q, RoleFor(orders) = %q", RoleFor("users"), RoleFor("orders"))
	}
}

func TestIsUniqueViolation_FindsTheConstraintThroughWrapping(t *testing.T) {
	t.Parallel()
	pgErr := &pgconn.PgError{Code: "23505", ConstraintName: "users_email_key"}
	wrapped := fmt.Errorf("insert user: %w", pgErr)
	if c, ok := IsUniqueViolation(wrapped); !ok || c != "users_email_key" {
		t.Errorf("IsUniqueViolation(wrapped 23505) = %q, %v", c, ok)
	}
	for _, err := range []error{nil, errors.New("23505"), &pgconn.PgError{Code: "23503", ConstraintName: "fk"}} {
		if _, ok := IsUniqueViolation(err); ok {
			t.Errorf("IsUniqueViolation(%v) = true", err)
		}
	}
	if SQLState(wrapped) != "23505" || SQLState(errors.New("x")) != "" {
		t.Error("SQLState does not read the code through wrapping")
	}
}

func TestIsConcurrencyError_RetriesOnlyRaces(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		"23505": true,  // two processes created the role at once
		"40001": true,  // serialization failure
		"40P01": true,  // deadlock
		"XX000": true,  // tuple concurrently updated
		"42501": false, // permission denied: retrying cannot help
		"42601": false, // syntax error
	} {
		if got := isConcurrencyError(fmt.Errorf("exec: %w", &pgconn.PgError{Code: code})); got != want {
			t.Errorf("isConcurrencyError(%s) = %v, want %v", code, got, want)
		}
	}
}

// A pool size pgxpool cannot hold (it counts in int32) is refused before
// anything connects, rather than wrapped into some other size.
func TestOpenAndOpenModule_RefusePoolSizesOutOfRange(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, -1, 1 << 31, 1<<32 + 10} {
		want := fmt.Sprintf("a pool of %d connections", size)
		if _, err := Open(context.Background(), "postgres://127.0.0.1:1/x", size); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(size %d) = %v, want %q", size, err, want)
		}
		if _, err := OpenModule(context.Background(), "postgres://127.0.0.1:1/x", "users", size); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("OpenModule(size %d) = %v, want %q", size, err, want)
		}
	}
}

func TestWhere_NamesTheDatabaseWithoutThePassword(t *testing.T) {
	got := Where("postgres://shop:s3cret@db.example:6543/modshop?sslmode=disable")
	if got != "shop@db.example:6543/modshop" {
		t.Errorf("Where = %q", got)
	}
	if got := Where("::not a url"); got != "" {
		t.Errorf("Where of garbage = %q", got)
	}
}
