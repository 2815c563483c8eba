package app_test

import (
	"context"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/db"
)

const modulePath = "github.com/modshop/modshop/"

// TestImports_RespectModuleWalls fails the build when code crosses a wall:
// a module may import platform and other modules' events packages only;
// platform never imports modules or app.
func TestImports_RespectModuleWalls(t *testing.T) {
	root := ".."
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != root) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			target := strings.Trim(imp.Path.Value, `"`)
			if !strings.HasPrefix(target, modulePath) {
				continue
			}
			checked++
			if msg := wallViolation(rel, strings.TrimPrefix(target, modulePath)); msg != "" {
				t.Errorf("%s imports %s: %s", rel, target, msg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no imports checked: the walk found no code")
	}
}

func wallViolation(file, target string) string {
	switch {
	case strings.HasPrefix(file, "platform/"):
		if strings.HasPrefix(target, "modules/") || strings.HasPrefix(target, "app") {
			return "platform must not know any module or the app"
		}
	case strings.HasPrefix(file, "modules/"):
		own := strings.SplitN(strings.TrimPrefix(file, "modules/"), "/", 2)[0]
		if strings.HasPrefix(target, "app") {
			return "a module must not import the composition root (its tests start the module alone: platform/testkit/moduletest)"
		}
		if strings.HasPrefix(target, "modules/") {
			other := strings.SplitN(strings.TrimPrefix(target, "modules/"), "/", 2)
			if other[0] != own && (len(other) < 2 || other[1] != "events") {
				return "a module may import only the events package of another module"
			}
		}
	}
	return ""
}

func TestWallViolation_Rules(t *testing.T) {
	cases := []struct {
		file, target string
		bad          bool
	}{
		{"modules/order/internal/saga.go", "modules/product/events", false},
		{"modules/order/internal/saga.go", "modules/product/internal/store", true},
		{"modules/order/order.go", "modules/product", true},
		{"modules/order/order.go", "modules/order/internal/saga", false},
		{"modules/order/order.go", "platform/bus", false},
		{"modules/order/order.go", "app", true},
		{"platform/bus/bus.go", "modules/order/events", true},
		{"platform/bus/bus.go", "app/apptest", true},
		{"app/app.go", "modules/order/internal/saga", false},
	}
	for _, c := range cases {
		if got := wallViolation(c.file, c.target) != ""; got != c.bad {
			t.Errorf("%s -> %s: violation %v, want %v", c.file, c.target, got, c.bad)
		}
	}
	// A module's tests start the module alone: they may not import the
	// composition root either.
	for _, file := range []string{"modules/order/list_test.go", "modules/user/internal/accounts/http_test.go"} {
		for _, target := range []string{"app", "app/apptest"} {
			if wallViolation(file, target) == "" {
				t.Errorf("%s -> %s: no violation, want one", file, target)
			}
		}
	}
}

// TestSchemas_ModuleRoleCannotReadAnotherModule shows the wall in the
// database: the user module's role cannot read a second module's schema,
// and that module's role cannot read the users schema.
func TestSchemas_ModuleRoleCannotReadAnotherModule(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	ctx := context.Background()

	admin, err := db.Open(ctx, shop.DatabaseURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := db.Provision(ctx, admin, "throwaway"); err != nil {
		t.Fatal(err)
	}
	other, err := db.OpenModule(ctx, shop.DatabaseURL, "throwaway", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, `CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('x')`); err != nil {
		t.Fatalf("a module must be able to work in its own schema: %v", err)
	}
	users, err := db.OpenModule(ctx, shop.DatabaseURL, "users", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	var n int
	if err := users.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		t.Fatalf("the user module must read its own tables: %v", err)
	}

	if _, err := users.ExecContext(ctx, `SELECT * FROM throwaway.secrets`); db.SQLState(err) != "42501" {
		t.Errorf("users role reading throwaway.secrets: err %v, want permission denied (42501)", err)
	}
	if _, err := other.ExecContext(ctx, `SELECT * FROM users.users`); db.SQLState(err) != "42501" {
		t.Errorf("throwaway role reading users.users: err %v, want permission denied (42501)", err)
	}
	if _, err := other.ExecContext(ctx, `SELECT * FROM users.sessions`); db.SQLState(err) != "42501" {
		t.Errorf("throwaway role reading users.sessions: err %v, want permission denied (42501)", err)
	}
	if _, err := other.ExecContext(ctx, `CREATE TABLE users.sneaky (v text)`); db.SQLState(err) != "42501" {
		t.Errorf("throwaway role creating a table in users: err %v, want permission denied (42501)", err)
	}
}
