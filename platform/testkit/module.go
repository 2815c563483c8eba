package testkit

import (
	"context"
	"database/sql"
	"io/fs"
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// ModuleSpec names the module a database is made for. Migrations are the
// module's own (migrations.For(Name) in the test: platform does not know
// where modules keep them).
type ModuleSpec struct {
	Name       string
	Schema     string
	Migrations fs.FS
	// MaxConns bounds the module's pool (default 8).
	MaxConns int
}

// ModuleDatabase is a new database holding one module's schema, role and
// migrations, as the shop provisions them, and nothing of other modules.
type ModuleDatabase struct {
	// URL reaches the database as superuser; Admin is a pool on it, for
	// checks the module's API cannot show and for the bus's provisioning.
	URL   string
	Admin *sql.DB
	// DB acts as the module's role, as the module's handle in the shop.
	DB     *gorm.DB
	Name   string
	Schema string
}

// NewModuleDatabase creates a database (dropped when the test ends),
// provisions the module's schema and role, applies its migrations as that
// role and opens the module's pool.
func NewModuleDatabase(tb testing.TB, spec ModuleSpec) *ModuleDatabase {
	tb.Helper()
	ctx := context.Background()
	maxConns := spec.MaxConns
	if maxConns <= 0 {
		maxConns = 8
	}
	url := NewDatabase(tb)
	admin, err := db.Open(ctx, url, 4)
	if err != nil {
		tb.Fatalf("database of module %s: %v", spec.Name, err)
	}
	tb.Cleanup(func() { _ = admin.Close() })
	if err := db.Provision(ctx, admin, spec.Schema); err != nil {
		tb.Fatalf("provision module %s: %v", spec.Name, err)
	}
	pool, err := db.OpenModule(ctx, url, spec.Schema, maxConns)
	if err != nil {
		tb.Fatalf("pool of module %s: %v", spec.Name, err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	if err := db.Migrate(ctx, pool, spec.Schema, spec.Migrations, Logger()); err != nil {
		tb.Fatalf("migrate module %s: %v", spec.Name, err)
	}
	g, err := db.Gorm(pool)
	if err != nil {
		tb.Fatal(err)
	}
	return &ModuleDatabase{URL: url, Admin: admin, DB: g, Name: spec.Name, Schema: spec.Schema}
}

// ModuleDB creates a database with one module's schema provisioned and
// migrated (files: the module's migrations, e.g. migrations.For("order"))
// and returns a handle acting as the module's role with a pool of up to
// maxConns connections, as the shop gives the module. For tests of a
// module's own store and handlers, without a whole shop.
func ModuleDB(tb testing.TB, schema string, files fs.FS, maxConns int) *gorm.DB {
	tb.Helper()
	return NewModuleDatabase(tb, ModuleSpec{Name: schema, Schema: schema, Migrations: files, MaxConns: maxConns}).DB
}

// Pool opens another pool acting as the module's role, as a second
// process of the module would have; it closes when the test ends.
func (d *ModuleDatabase) Pool(tb testing.TB, maxConns int) *gorm.DB {
	tb.Helper()
	pool, err := db.OpenModule(context.Background(), d.URL, d.Schema, maxConns)
	if err != nil {
		tb.Fatalf("pool of module %s: %v", d.Name, err)
	}
	tb.Cleanup(func() { _ = pool.Close() })
	g, err := db.Gorm(pool)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}
