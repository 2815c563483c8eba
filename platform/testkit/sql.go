package testkit

import (
	"context"
	"database/sql"
	"testing"
)

// OpenSQL opens the database at url (a superuser URL from NewDatabase or
// ModuleDatabase) for checks the API cannot show, such as row counts; it
// closes when the test ends.
func OpenSQL(tb testing.TB, url string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

// QueryInt runs a query that returns one integer, failing the test if it
// cannot.
func QueryInt(tb testing.TB, db *sql.DB, query string, args ...any) int64 {
	tb.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}
