package web

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// How the front end's modules are laid out (docs/design.md): js/dom.js builds
// elements, js/format.js says how values read (money, times, words), shared
// widgets live in js/widgets/, and a page under js/pages/ imports no other
// page: what two pages share is a widget.
func TestStatic_ModulesKeepTheirPlaces(t *testing.T) {
	problems, err := layoutProblems(Static())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// The check finds each breach of the layout, so the test above can fail.
func TestStatic_LayoutCheckFindsEachBreach(t *testing.T) {
	good := fstest.MapFS{
		"js/dom.js":             {Data: []byte("export function h(tag) { return document.createElement(tag); }\n")},
		"js/format.js":          {Data: []byte("export function money(c) { return (c / 100).toFixed(2); }\nexport function when(iso) { return iso; }\n")},
		"js/widgets/order.js":   {Data: []byte("import { h } from '../dom.js';\nimport { money } from '../format.js';\nexport function orderCard(o) { return h('li'); }\n")},
		"js/pages/orders.js":    {Data: []byte("import { h } from '../dom.js';\nimport { orderCard } from '../widgets/order.js';\n")},
		"js/pages/staff-ord.js": {Data: []byte("import {\n  orderCard,\n} from '../widgets/order.js';\n")},
	}
	tests := []struct {
		name       string
		file, data string
		want       string // a word of the one problem; "" for none
	}{
		{"as laid out", "", "", ""},
		{"a page imports a page", "js/pages/staff-ord.js", "import { orderCard } from './orders.js';\n", "js/pages/staff-ord.js imports the page ./orders.js"},
		{"a page imports a page over several lines", "js/pages/staff-ord.js", "import {\n  orderCard,\n} from \"../pages/orders.js\";\n", "imports the page ../pages/orders.js"},
		{"a page imports a page at run time", "js/pages/staff-ord.js", "const m = await import('./orders.js');\n", "imports the page ./orders.js"},
		{"dom.js defines a formatter", "js/dom.js", "export function h() {}\nexport function money(c) { return c; }\n", "js/dom.js defines money"},
		{"dom.js formats numbers", "js/dom.js", "export function h(n) { return n.toLocaleString('en-US'); }\n", "toLocaleString"},
		{"dom.js formats dates", "js/dom.js", "const f = new Intl.DateTimeFormat();\nexport function h() {}\n", "Intl."},
		{"dom.js hands on formatting", "js/dom.js", "export { money } from './format.js';\n", "js/dom.js imports ./format.js"},
		{"format.js builds elements", "js/format.js", "import { h } from './dom.js';\nexport function money(c) { return h('span', {}, c); }\n", "js/format.js imports ./dom.js"},
		{"format.js touches the document", "js/format.js", "export function money(c) { return document.title; }\n", "document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, f := range good {
				fsys[name] = f
			}
			if tt.file != "" {
				fsys[tt.file] = &fstest.MapFile{Data: []byte(tt.data)}
			}
			problems, err := layoutProblems(fsys)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "" && len(problems) > 0:
				t.Fatalf("problems %q, want none", problems)
			case tt.want != "" && (len(problems) != 1 || !strings.Contains(problems[0], tt.want)):
				t.Fatalf("problems %q, want one that says %q", problems, tt.want)
			}
		})
	}
}

var (
	// moduleSpec finds every module a file imports, re-exports or loads at
	// run time, however the statement is spread over lines.
	moduleSpec = regexp.MustCompile(`(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]`)
	// defined finds the names a module defines at its top level.
	defined = regexp.MustCompile(`(?m)^(?:export\s+)?(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)`)
	// formatting is what only format.js may use: the locale formatters.
	formatting = regexp.MustCompile(`\bIntl\.|\.toLocale\w*\(`)
	// domUse is what format.js may not touch: it returns strings.
	domUse = regexp.MustCompile(`\bdocument\b|\bcreateElement\b`)
)

// layoutProblems says where the modules under js/ leave their places: a page
// that imports a page; formatting in dom.js (a function format.js exports, a
// locale formatter, an import of format.js); DOM work in format.js.
func layoutProblems(fsys fs.FS) ([]string, error) {
	var problems []string
	read := func(path string) (string, error) {
		b, err := fs.ReadFile(fsys, path)
		return string(b), err
	}
	err := fs.WalkDir(fsys, "js/pages", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".js") {
			return err
		}
		src, err := read(path)
		if err != nil {
			return err
		}
		for _, m := range moduleSpec.FindAllStringSubmatch(src, -1) {
			if strings.HasPrefix(resolve("js/pages", m[1]), "js/pages/") {
				problems = append(problems, fmt.Sprintf("%s imports the page %s: what pages share belongs in js/widgets/", path, m[1]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	dom, err := read("js/dom.js")
	if err != nil {
		return nil, err
	}
	format, err := read("js/format.js")
	if err != nil {
		return nil, err
	}
	formatters := map[string]bool{}
	for _, m := range defined.FindAllStringSubmatch(format, -1) {
		formatters[m[1]] = true
	}
	for _, m := range defined.FindAllStringSubmatch(dom, -1) {
		if formatters[m[1]] {
			problems = append(problems, fmt.Sprintf("js/dom.js defines %s, a formatter: it belongs in js/format.js", m[1]))
		}
	}
	for _, m := range formatting.FindAllString(dom, -1) {
		problems = append(problems, fmt.Sprintf("js/dom.js uses %s: formatting belongs in js/format.js", m))
	}
	for _, m := range moduleSpec.FindAllStringSubmatch(dom, -1) {
		if resolve("js", m[1]) == "js/format.js" {
			problems = append(problems, fmt.Sprintf("js/dom.js imports %s: DOM helpers format nothing", m[1]))
		}
	}
	for _, m := range moduleSpec.FindAllStringSubmatch(format, -1) {
		problems = append(problems, fmt.Sprintf("js/format.js imports %s: formatting is plain functions from values to strings", m[1]))
	}
	for _, m := range domUse.FindAllString(format, -1) {
		problems = append(problems, fmt.Sprintf("js/format.js uses %s: formatting builds no elements", m))
	}
	return problems, nil
}
