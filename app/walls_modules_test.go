package app_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/payment"
	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/modules/user"
)

// repoImport is the import path every package of this repository starts with.
const repoImport = "github.com/modshop/modshop/"

// TestImports_OnlyAppJoinsModulesWithMigrations holds the rule of where a
// module meets its migrations: only the composition root's package (app,
// in app.Modules) and tests import the migrations package. A helper
// package that only tests import counts as test code.
func TestImports_OnlyAppJoinsModulesWithMigrations(t *testing.T) {
	files := repoImports(t)
	importers := map[string][]string{} // package folder → the files importing it
	for file, imports := range files {
		for _, imp := range imports {
			importers[imp] = append(importers[imp], file)
		}
	}
	joins := 0
	for file, imports := range files {
		if !slices.Contains(imports, "migrations") {
			continue
		}
		joins++
		dir := path.Dir(file)
		testOnly := len(importers[dir]) > 0 && !slices.ContainsFunc(importers[dir], func(f string) bool { return !isTestFile(f) })
		if msg := migrationsJoinViolation(file, testOnly); msg != "" {
			t.Errorf("%s imports %smigrations: %s", file, repoImport, msg)
		}
	}
	if joins == 0 {
		t.Fatal("nothing imports the migrations package: the walk found no code, or the join moved")
	}
}

// migrationsJoinViolation says why a file may not import the migrations
// package ("" if it may). testOnly: only tests import the file's package.
func migrationsJoinViolation(file string, testOnly bool) string {
	if isTestFile(file) || testOnly || path.Dir(file) == "app" {
		return ""
	}
	return "only the composition root (app.Modules) joins a module with its migrations; " +
		"a module gets them from its definition's entry in app.Modules, a test through migrations.For"
}

func isTestFile(file string) bool { return strings.HasSuffix(file, "_test.go") }

func TestMigrationsJoinViolation_Rules(t *testing.T) {
	cases := []struct {
		file     string
		testOnly bool
		bad      bool
	}{
		{"app/modules.go", false, false},
		{"app/stack_test.go", false, false},
		{"modules/order/internal/orders/store_test.go", false, false},
		{"modules/payment/internal/testdb/testdb.go", true, false},
		{"modules/order/order.go", false, true},
		{"modules/order/internal/orders/store.go", false, true},
		{"platform/testkit/module.go", false, true},
		{"app/apptest/split.go", false, true},
	}
	for _, c := range cases {
		if got := migrationsJoinViolation(c.file, c.testOnly) != ""; got != c.bad {
			t.Errorf("%s (test only %v): violation %v, want %v", c.file, c.testOnly, got, c.bad)
		}
	}
}

// repoImports maps every Go file of the repository (its path from the
// root) to the repository's packages it imports (their folders).
func repoImports(t *testing.T) map[string][]string {
	t.Helper()
	const root = ".."
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		out[rel] = []string{}
		for _, imp := range f.Imports {
			if target := strings.Trim(imp.Path.Value, `"`); strings.HasPrefix(target, repoImport) {
				out[rel] = append(out[rel], strings.TrimPrefix(target, repoImport))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestModules_EachHasItsMigrationsFolder: every module of app.Modules has
// a folder of migrations (with at least one), and every folder of
// migrations/ belongs to a module: a folder left behind by a renamed or
// removed module would never be applied.
func TestModules_EachHasItsMigrationsFolder(t *testing.T) {
	names := map[string]bool{}
	for _, m := range app.Modules(app.DefaultConfig()) {
		names[m.Name] = true
		sql, err := fs.Glob(m.Migrations, "*.sql")
		if err != nil || len(sql) == 0 {
			t.Errorf("module %s: no migrations in migrations/%s (%v)", m.Name, m.Name, err)
		}
	}
	entries, err := os.ReadDir("../migrations")
	if err != nil {
		t.Fatal(err)
	}
	folders := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		folders++
		if !names[e.Name()] {
			t.Errorf("migrations/%s belongs to no module of app.Modules", e.Name())
		}
	}
	if folders != len(names) {
		t.Errorf("%d folders in migrations/, %d modules", folders, len(names))
	}
}

// TestModules_DefinitionsAreComplete: each definition in the list has
// what the composition root relies on, and no two share a name, schema,
// path prefix or handler.
func TestModules_DefinitionsAreComplete(t *testing.T) {
	ident := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	seen := map[string]string{}
	claim := func(kind, value, module string) {
		if other, ok := seen[kind+" "+value]; ok {
			t.Errorf("%s %q is both module %s's and module %s's", kind, value, other, module)
		}
		seen[kind+" "+value] = module
	}
	mods := app.Modules(app.DefaultConfig())
	if len(mods) == 0 {
		t.Fatal("app.Modules lists no module")
	}
	owners := 0
	for _, m := range mods {
		if !ident.MatchString(m.Name) || !ident.MatchString(m.Schema) {
			t.Errorf("module %q, schema %q: want lower-case identifiers", m.Name, m.Schema)
		}
		claim("name", m.Name, m.Name)
		claim("schema", m.Schema, m.Name)
		if len(m.OpenAPI) == 0 || m.New == nil || m.RegisterEvents == nil {
			t.Errorf("module %s: a definition needs an OpenAPI fragment, New and RegisterEvents", m.Name)
		}
		if len(m.Paths) == 0 {
			t.Errorf("module %s: no paths, so a gateway cannot route to it", m.Name)
		}
		for _, p := range m.Paths {
			if !strings.HasPrefix(p, "/api/v1/") || strings.HasSuffix(p, "/") {
				t.Errorf("module %s: path %q: want /api/v1/<resource>", m.Name, p)
			}
			claim("path", p, m.Name)
		}
		for _, h := range m.Handlers {
			claim("handler", h, m.Name)
		}
		if m.RemoteAuthenticator != nil {
			owners++
		}
	}
	if owners != 1 {
		t.Errorf("%d modules own sessions (RemoteAuthenticator), want exactly 1", owners)
	}
}

// TestModules_HandlerNamesArePinned pins every bus handler's name. A name
// is its consumer group's durable id: offsets, inboxes, dead letters and
// RabbitMQ queue names keep it, and a renamed handler is a new group that
// replays its whole topic. So a change here is a migration of stored
// state, never a tidy-up (docs/adding-a-module.md); a new handler adds a
// line, named "<module>.on_<event>".
func TestModules_HandlerNamesArePinned(t *testing.T) {
	pinned := []struct{ constant, value, want string }{
		{"order.HandlerOnStockReserved", order.HandlerOnStockReserved, "order.on_stock_reserved"},
		{"order.HandlerOnStockRejected", order.HandlerOnStockRejected, "order.on_stock_rejected"},
		{"order.HandlerOnPaymentSucceeded", order.HandlerOnPaymentSucceeded, "order.on_payment_succeeded"},
		{"order.HandlerOnPaymentFailed", order.HandlerOnPaymentFailed, "order.on_payment_failed"},
		{"order.HandlerOnPaymentRefunded", order.HandlerOnPaymentRefunded, "order.on_payment_refunded"},
		{"order.HandlerOnRefundFailed", order.HandlerOnRefundFailed, "order.on_refund_failed"},
		{"payment.HandlerCharge", payment.HandlerCharge, "payment.charge"},
		{"payment.HandlerRefund", payment.HandlerRefund, "payment.refund"},
		{"product.HandlerReserveStock", product.HandlerReserveStock, "product.reserve_stock"},
		{"product.HandlerCommitStock", product.HandlerCommitStock, "product.commit_stock"},
		{"product.HandlerReleaseOnCancel", product.HandlerReleaseOnCancel, "product.release_on_cancel"},
		{"product.HandlerReleaseOnReject", product.HandlerReleaseOnReject, "product.release_on_reject"},
		{"order.HandlerOnProductCreated", order.HandlerOnProductCreated, "order.on_product_created"},
		{"order.HandlerOnProductUpdated", order.HandlerOnProductUpdated, "order.on_product_updated"},
		{"order.HandlerOnProductBackfilled", order.HandlerOnProductBackfilled, "order.on_product_backfilled"},
		{"order.HandlerOnUserRegistered", order.HandlerOnUserRegistered, "order.on_user_registered"},
		{"order.HandlerOnUserUpdated", order.HandlerOnUserUpdated, "order.on_user_updated"},
		{"order.HandlerOnUserBackfilled", order.HandlerOnUserBackfilled, "order.on_user_backfilled"},
		{"product.HandlerOnBackfillRequested", product.HandlerOnBackfillRequested, "product.on_backfill_requested"},
		{"user.HandlerOnBackfillRequested", user.HandlerOnBackfillRequested, "user.on_backfill_requested"},
		{"product.HandlerOnOrderReturned", product.HandlerOnOrderReturned, "product.on_order_returned"},
	}
	var want []string
	for _, p := range pinned {
		if p.value != p.want {
			t.Errorf("%s = %q, pinned as %q: renaming a handler starts a new consumer group that replays its topic", p.constant, p.value, p.want)
		}
		want = append(want, p.want)
	}
	var got []string
	for _, m := range app.Modules(app.DefaultConfig()) {
		got = append(got, m.Handlers...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the definitions name the handlers %v; pinned: %v (pin a new handler here)", got, want)
	}
}
