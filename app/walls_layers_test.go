package app_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gormQueryMethods are gorm's methods that run or shape a query: a call of
// one of them on a value (not on a package) is the store's business.
var gormQueryMethods = map[string]bool{
	"Raw": true, "Exec": true, "Find": true, "First": true, "Where": true, "Create": true,
	"Save": true, "Delete": true, "Model": true, "Table": true, "Updates": true,
}

// sqlLiteral matches a string literal that holds a statement. The shop
// writes SQL's keywords in capitals; in small letters they start error
// messages ("insert order %s: %w") and prose ("charging 5 with card").
var sqlLiteral = regexp.MustCompile(`^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s`)

// layerViolations returns what the module file rel (its source src) breaks
// of the rule of where code lives inside a module: under internal/, only
// http.go and http_*.go speak HTTP (import gin or platform/httpx); in the
// whole module, only store.go and store_*.go query the database (call
// gorm's query methods or hold SQL). Tests are free of both rules.
func layerViolations(rel string, src []byte) ([]string, error) {
	parts := strings.Split(rel, "/")
	if len(parts) < 3 || parts[0] != "modules" || !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
		return nil, nil
	}
	base := path.Base(rel)
	internal := parts[2] == "internal"
	if !internal && len(parts) != 3 {
		return nil, nil // a module's events package, say: neither HTTP nor SQL at issue
	}
	f, err := parser.ParseFile(token.NewFileSet(), rel, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var found []string
	packages := map[string]bool{}
	for _, imp := range f.Imports {
		target, _ := strconv.Unquote(imp.Path.Value)
		name := path.Base(target)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		packages[name] = true
		speaksHTTP := target == "github.com/gin-gonic/gin" || target == modulePath+"platform/httpx"
		if internal && speaksHTTP && !isLayerFile(base, "http") {
			found = append(found, "imports "+target+" outside http.go")
		}
	}
	if isLayerFile(base, "store") {
		return found, nil
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || !gormQueryMethods[sel.Sel.Name] {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && packages[id.Name] {
				return true // a package's function, not a query on a handle
			}
			if len(n.Args) > 0 && isIdent(n.Args[0], "ctx") {
				return true // one of ours (records.Find(ctx, …)): gorm's take no context
			}
			found = append(found, "calls ."+sel.Sel.Name+" outside the store")
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			if s, err := strconv.Unquote(n.Value); err == nil && sqlLiteral.MatchString(s) {
				found = append(found, "holds SQL outside the store: "+strings.Fields(s)[0]+" …")
			}
		}
		return true
	})
	return found, nil
}

// isIdent reports whether e is the identifier name.
func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isLayerFile reports whether base is layer.go or layer_*.go.
func isLayerFile(base, layer string) bool {
	return base == layer+".go" || strings.HasPrefix(base, layer+"_") && strings.HasSuffix(base, ".go")
}

// TestModules_HTTPAndSQLStayInTheirFiles holds the rule on today's tree.
func TestModules_HTTPAndSQLStayInTheirFiles(t *testing.T) {
	root := ".."
	checked := 0
	err := filepath.WalkDir(filepath.Join(root, "modules"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		found, err := layerViolations(rel, src)
		if err != nil {
			return err
		}
		if !strings.HasSuffix(rel, "_test.go") {
			checked++
		}
		for _, v := range found {
			t.Errorf("%s %s", rel, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Fatal("no module file checked: the walk found no code")
	}
}

func TestLayerViolations_Rules(t *testing.T) {
	const handler = `package orders
import (
	"github.com/gin-gonic/gin"
	"github.com/modshop/modshop/platform/httpx"
)
func (h httpHandler) get(c *gin.Context) { httpx.Error(c, nil); c.JSON(200, "DELETE") }
`
	const store = `package orders
import "gorm.io/gorm"
func (s store) load(db *gorm.DB, id string) error {
	return db.Raw(` + "`SELECT * FROM orders WHERE id = ?`" + `, id).Scan(nil).Error
}
`
	const service = `package orders
import ("errors"; "strings")
func (s *Service) Place(id string) error { s.st.load(nil, id); return errors.New(strings.TrimSpace("selected " + id)) }
`
	cases := []struct {
		name, file, src string
		bad             bool
	}{
		{"handler in http.go", "modules/order/internal/orders/http.go", handler, false},
		{"handler in http_admin.go", "modules/order/internal/orders/http_admin.go", handler, false},
		{"query in store.go", "modules/order/internal/orders/store.go", store, false},
		{"query in store_refunds.go", "modules/payment/internal/ledger/store_refunds.go", store, false},
		{"service calling the store", "modules/order/internal/orders/service.go", service, false},
		{"a test holds what it likes", "modules/order/internal/orders/service_test.go", store, false},
		{"the root file mounts routes", "modules/order/order.go", handler, false},
		{"gin outside http.go", "modules/order/internal/orders/service.go", `package orders
import "github.com/gin-gonic/gin"
var _ gin.HandlerFunc`, true},
		{"httpx outside http.go", "modules/order/internal/orders/saga.go", `package orders
import "github.com/modshop/modshop/platform/httpx"
var _ = httpx.Error`, true},
		{"query moved to the service", "modules/order/internal/orders/service.go", strings.Replace(store, "func (s store)", "func (s *Service)", 1), true},
		{"gorm call without SQL text", "modules/order/internal/orders/saga.go", `package orders
func (s *Service) drop(id string) error { return s.db.Where("id = ?", id).Delete(&order{}).Error }`, true},
		{"SQL held in a constant", "modules/order/internal/orders/saga.go", `package orders
const q = "  INSERT INTO orders (id) VALUES ($1)"`, true},
		{"words that only look like SQL", "modules/order/internal/orders/saga.go", `package orders
var detail = "charging 5 with card"
func (s *Service) load(ctx context.Context, id string) error {
	_, _, err := s.records.Find(ctx, "charge", id)
	return fmt.Errorf("update order %s: %w", id, err)
}`, false},
		{"SQL in the root file", "modules/order/order.go", `package order
const q = ` + "`\n\tWITH x AS (SELECT 1) SELECT * FROM x`", true},
		{"query in a bus handler", "modules/order/internal/orders/saga_handlers.go", `package orders
func (h handlers) on(tx txDB) error { return tx.Exec("UPDATE orders SET status = 'paid'").Error }`, true},
	}
	for _, c := range cases {
		found, err := layerViolations(c.file, []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := len(found) > 0; got != c.bad {
			t.Errorf("%s (%s): violations %q, want any: %v", c.name, c.file, found, c.bad)
		}
	}
	// Every store of today's tree, moved next to its service, fails.
	stores, err := filepath.Glob("../modules/*/internal/*/store*.go")
	if err != nil || len(stores) == 0 {
		t.Fatalf("no stores found: %v", err)
	}
	for _, file := range stores {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		moved := path.Join(path.Dir(filepath.ToSlash(strings.TrimPrefix(file, "../"))), "service.go")
		if found, err := layerViolations(moved, src); err != nil || len(found) == 0 {
			t.Errorf("%s moved to %s: no violation (%v), want some", file, moved, err)
		}
	}
}
