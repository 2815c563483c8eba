package testkit

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// ModuleDB creates a database with one module's schema provisioned and
// migrated (files: the module's migrations, e.g. migrations.For("order"))
// and returns a handle acting as the module's role with a pool of up to
// maxConns connections, as the shop gives the module. For tests of a
// module's own store and handlers, without a whole shop.
func ModuleDB(tb testing.TB, schema string, files fs.FS, maxConns int) *gorm.DB {
	tb.Helper()
	ctx := context.Background()
	url := NewDatabase(tb)
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = admin.Close() }()
	if err := db.Provision(ctx, admin, schema); err != nil {
		tb.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, url, schema, maxConns)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	if err := db.Migrate(ctx, pool, schema, files, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		tb.Fatal(err)
	}
	g, err := db.Gorm(pool)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}
