package web

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestIsPage_TheFrontEndsOwnPathsOnly(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/cart": true, "/checkout": true, "/login": true, "/register": true,
		"/orders": true, "/orders/7b0c": true, "/products/7b0c": true,
		"/staff": true, "/staff/bus": true, "/staff/products": true, "/staff/products/new": true,
		"/staff/products/7b0c": true, "/staff/orders": true,
		// What the front end has no page for, it cannot draw either.
		"/products": false, "/products/": false, "/cart/": false, "/staff/": false, "/orders/": false,
		"/orders/7b0c/x": false, "/staff/nope": false, "/staff/bus/x": false, "/no-such-page": false,
		"/app.css": false, "/js/main.js": false, "/favicon.ico": false, "/cartx": false, "/staffroom": false,
		"/api/v1/orders": false, "": false, "//": false,
	} {
		if got := IsPage(path); got != want {
			t.Errorf("IsPage(%q) = %v, want %v", path, got, want)
		}
	}
}

// The server answers 200 with index.html exactly for the pages the front
// end draws, and 404 for the rest: the list in Go (Pages) and the routes
// js/main.js registers must be the same list.
func TestPages_AgreeWithTheFrontEndsRoutes(t *testing.T) {
	b, err := fs.ReadFile(Static(), "js/main.js")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`(?m)^route\('([^']*)', \w+\);$`).FindAllStringSubmatch(string(b), -1) {
		routes = append(routes, m[1])
	}
	if len(routes) < 5 {
		t.Fatalf("found %d route(...) calls in js/main.js; has the way routes are registered changed?", len(routes))
	}
	slices.Sort(routes)
	pages := slices.Sorted(slices.Values(Pages()))
	if !slices.Equal(routes, pages) {
		t.Errorf("js/main.js routes %q\nbut web.Pages() lists %q", routes, pages)
	}
}

// The Content-Security-Policy allows scripts and styles from files only:
// no inline <script> or <style>, no style="" attributes, no on…=""
// handlers, no eval. The browser tests show the pages run without a
// violation; this finds the slip before a browser does, and says where.
func TestStatic_NothingTheCSPRefuses(t *testing.T) {
	forbidden := map[string]*regexp.Regexp{
		".html": regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]|<style|\sstyle\s*=|\son[a-z]+\s*=|javascript:`),
		".js":   regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|setAttribute\(\s*['"](style|on[a-z]+)['"]|\beval\(|new Function\(|['"]javascript:`),
	}
	files := 0
	err := fs.WalkDir(Static(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		for ext, re := range forbidden {
			if !strings.HasSuffix(path, ext) {
				continue
			}
			files++
			b, err := fs.ReadFile(Static(), path)
			if err != nil {
				return err
			}
			for i, line := range strings.Split(string(b), "\n") {
				if m := re.FindString(line); m != "" {
					t.Errorf("%s:%d: %q breaks the Content-Security-Policy (or builds HTML from strings)", path, i+1, m)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 5 {
		t.Fatalf("checked %d files; the front end is missing", files)
	}
}

// Every module the pages import is embedded: a missing file would only
// show in a browser.
func TestStatic_EveryImportedModuleIsEmbedded(t *testing.T) {
	imports := regexp.MustCompile(`(?m)^import .* from '([^']+)';$|^import '([^']+)';$`)
	err := fs.WalkDir(Static(), "js", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		b, err := fs.ReadFile(Static(), path)
		if err != nil {
			return err
		}
		dir := path[:strings.LastIndex(path, "/")]
		for _, m := range imports.FindAllStringSubmatch(string(b), -1) {
			spec := m[1] + m[2]
			target := resolve(dir, spec)
			if _, err := fs.Stat(Static(), target); err != nil {
				t.Errorf("%s imports %s (%s), which is not embedded", path, spec, target)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func resolve(dir, spec string) string {
	parts := strings.Split(dir, "/")
	for _, p := range strings.Split(spec, "/") {
		switch p {
		case ".":
		case "..":
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}
