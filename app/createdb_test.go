package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/testkit"
)

// onTestServer returns a URL to database name on the test server as user
// (with password; "" keeps the server URL's own user), and an
// administrative connection to that server.
func onTestServer(t *testing.T, name, user, password string) (string, *sql.DB) {
	t.Helper()
	server, err := testkit.ServerURL()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String(), admin
}

func databaseExists(t *testing.T, admin *sql.DB, name string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow(`SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// The README's example with an existing PostgreSQL names a database that a
// stock server does not have yet: the shop creates it when its user may,
// and says so.
func TestExistingPostgreSQL_TheShopCreatesItsMissingDatabase(t *testing.T) {
	t.Parallel()
	name := "modshop_new_" + strings.ToLower(rand.Text()[:10])
	dbURL, admin := onTestServer(t, name, "", "")
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize() + ` WITH (FORCE)`); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	if databaseExists(t, admin, name) {
		t.Fatalf("database %s exists before the test", name)
	}

	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.DBMaxConns = 4
	var logs bytes.Buffer
	shop, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("open the shop on a database that does not exist yet: %v", err)
	}
	if err := shop.Close(context.Background()); err != nil {
		t.Errorf("close: %v", err)
	}
	if !databaseExists(t, admin, name) {
		t.Fatalf("the shop started but database %s does not exist", name)
	}
	if !strings.Contains(logs.String(), "created database") || !strings.Contains(logs.String(), name) {
		t.Errorf("the log does not say the database was created:\n%s", logs.String())
	}
}

// A user who may not create databases is told the exact command that
// creates it, and nothing is created.
func TestExistingPostgreSQL_WithoutCreateDBTheErrorSaysTheCommand(t *testing.T) {
	t.Parallel()
	suffix := strings.ToLower(rand.Text()[:10])
	role, password, name := "modshop_nocreatedb_"+suffix, "pw-"+suffix, "modshop_missing_"+suffix
	dbURL, admin := onTestServer(t, name, role, password)
	if _, err := admin.Exec(`CREATE ROLE ` + pgx.Identifier{role}.Sanitize() + ` LOGIN NOCREATEDB NOSUPERUSER PASSWORD '` + password + `'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP ROLE IF EXISTS ` + pgx.Identifier{role}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})

	err := app.Run(context.Background(), app.Env{Args: []string{"migrate"}, Stdout: io.Discard, Stderr: io.Discard,
		Lookup: func(k string) (string, bool) {
			if k == "MODSHOP_DATABASE_URL" {
				return dbURL, true
			}
			return "", false
		}})
	if err == nil {
		t.Fatal("migrate succeeded for a user without CREATEDB on a database that does not exist")
	}
	u, _ := url.Parse(dbURL)
	for _, want := range []string{
		"createdb -h " + u.Hostname() + " -p " + u.Port() + " -U postgres -O " + role + " " + name,
		`CREATE DATABASE "` + name + `" OWNER "` + role + `"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not give the command %q:\n%v", want, err)
		}
	}
	if databaseExists(t, admin, name) {
		t.Errorf("database %s was created by a user without CREATEDB", name)
	}
}
