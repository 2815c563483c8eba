// Package testdb gives the payment module's inside tests a database of
// their own with the payments schema migrated, acting as the module's role
// as the running shop does. Only tests import it.
package testdb

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// Schema is the payment module's schema.
const Schema = "payments"

// Open creates a new database, provisions and migrates the payments
// schema, and returns a handle that acts as the module's role.
func Open(tb testing.TB) *gorm.DB {
	tb.Helper()
	ctx := context.Background()
	url := testkit.NewDatabase(tb)
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close()
	if err := db.Provision(ctx, admin, Schema); err != nil {
		tb.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, url, Schema, 8)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "migrations", "payment")
	if err := db.Migrate(ctx, pool, Schema, os.DirFS(dir), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		tb.Fatal(err)
	}
	g, err := db.Gorm(pool)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}
