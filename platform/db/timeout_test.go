package db_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// A module pool opened with a statement timeout has it on every
// connection without a statement to set it; a statement past it fails as
// "unavailable" and leaves the connection to serve the next one; a
// transaction can lift it for itself.
func TestStatementTimeout_BoundsStatementsKeepsConnectionsAndCanBeLifted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testkit.NewDatabase(t)
	admin, err := db.Open(ctx, dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := db.Provision(ctx, admin, "timeouts"); err != nil {
		t.Fatal(err)
	}
	// One connection: if a timed-out statement kept it, nothing more runs.
	pool, err := db.OpenModule(ctx, dbURL, "timeouts", 1, db.StatementTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var setting string
	if err := pool.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&setting); err != nil || setting != "100ms" {
		t.Fatalf("statement_timeout = %q (%v), want 100ms", setting, err)
	}
	_, err = pool.ExecContext(ctx, "SELECT pg_sleep(10)")
	if db.SQLState(err) != "57014" || !db.IsUnavailable(err) {
		t.Fatalf("a statement past the timeout: %v, want 57014, unavailable", err)
	}
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("the pool's one connection is not usable after a timeout: %v", err)
	}
	_, err = tx.ExecContext(ctx, "SELECT pg_sleep(10)")
	if db.SQLState(err) != "57014" {
		t.Fatalf("a statement past the timeout in a transaction: %v", err)
	}
	tx.Rollback()

	err = inTx(ctx, pool, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.LiftStatementTimeout); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "SELECT pg_sleep(0.3)")
		return err
	})
	if err != nil {
		t.Fatalf("a statement longer than the timeout, in a transaction that lifted it: %v", err)
	}
	if err := pool.QueryRowContext(ctx, "SHOW statement_timeout").Scan(&setting); err != nil || setting != "100ms" {
		t.Fatalf("after the transaction that lifted it, statement_timeout = %q (%v), want 100ms again", setting, err)
	}
}

func inTx(ctx context.Context, pool *sql.DB, f func(*sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
