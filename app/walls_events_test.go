package app_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestWalls_EventsPackagesImportOnlyTheStandardLibrary: an events package is
// the contract between modules (docs/adr/0025-event-contracts-are-golden-files.md);
// it declares types and names, so any other module can import it without
// taking on a dependency, and its golden files pin all there is of it. Its
// tests may import more.
func TestWalls_EventsPackagesImportOnlyTheStandardLibrary(t *testing.T) {
	root := filepath.Join("..", "modules")
	isStd := standardLibrary(t)
	packages := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() || !isEventsFile(filepath.ToSlash(rel)) {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		packages[filepath.Dir(rel)] = true
		var imports []string
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			imports = append(imports, p)
		}
		for _, bad := range eventsImportViolations(imports, isStd) {
			t.Errorf("modules/%s imports %s: an events package imports only the standard library", filepath.ToSlash(rel), bad)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(packages) < 4 {
		t.Fatalf("found events packages %v, want at least the four modules': the walk missed them", packages)
	}
}

// isEventsFile reports whether path (below modules/) is a non-test Go file
// of a module's events package or a package below it.
func isEventsFile(path string) bool {
	parts := strings.Split(path, "/")
	return len(parts) >= 3 && parts[1] == "events" &&
		strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go")
}

// eventsImportViolations lists the imports outside the standard library.
func eventsImportViolations(imports []string, isStd func(string) bool) []string {
	var bad []string
	for _, p := range imports {
		if !isStd(p) {
			bad = append(bad, p)
		}
	}
	return bad
}

// standardLibrary reports whether an import path is the standard library's:
// no dot in its first element (the go command's own rule: every other path
// starts with a domain), not cgo's "C", and a directory of GOROOT/src.
func standardLibrary(t *testing.T) func(string) bool {
	goroot := build.Default.GOROOT
	if goroot == "" {
		t.Log("GOROOT unknown (a -trimpath build): judging import paths by their first element alone")
	}
	return func(path string) bool {
		first, _, _ := strings.Cut(path, "/")
		if strings.Contains(first, ".") || path == "C" || path == "" {
			return false
		}
		if goroot == "" {
			return true
		}
		info, err := os.Stat(filepath.Join(goroot, "src", filepath.FromSlash(path)))
		return err == nil && info.IsDir()
	}
}

func TestWalls_EventsImportChecker(t *testing.T) {
	isStd := standardLibrary(t)
	cases := []struct {
		imports []string
		bad     []string
	}{
		{[]string{"time", "encoding/json", "fmt"}, nil},
		{[]string{"time", "github.com/modshop/modshop/platform/bus"}, []string{"github.com/modshop/modshop/platform/bus"}},
		{[]string{"github.com/modshop/modshop/modules/product/events"}, []string{"github.com/modshop/modshop/modules/product/events"}},
		{[]string{"github.com/google/uuid", "gorm.io/gorm", "golang.org/x/text/currency"}, []string{"github.com/google/uuid", "gorm.io/gorm", "golang.org/x/text/currency"}},
		{[]string{"C"}, []string{"C"}},
	}
	if build.Default.GOROOT != "" {
		cases = append(cases, struct {
			imports []string
			bad     []string
		}{[]string{"shop/money"}, []string{"shop/money"}}) // no dot, yet no standard package
	}
	for _, c := range cases {
		got := eventsImportViolations(c.imports, isStd)
		if strings.Join(got, " ") != strings.Join(c.bad, " ") {
			t.Errorf("%v: violations %v, want %v", c.imports, got, c.bad)
		}
	}
	files := []struct {
		path   string
		events bool
	}{
		{"order/events/events.go", true},
		{"order/events/v2/events.go", true},
		{"order/events/events_test.go", false},
		{"order/order.go", false},
		{"order/internal/events/x.go", false},
		{"order/events/testdata/order.placed.v1.json", false},
	}
	for _, f := range files {
		if got := isEventsFile(f.path); got != f.events {
			t.Errorf("isEventsFile(%s) = %v, want %v", f.path, got, f.events)
		}
	}
}
