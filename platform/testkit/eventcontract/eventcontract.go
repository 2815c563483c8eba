// Package eventcontract pins the wire shape of a module's events to golden
// JSON files, one per event name and version (testdata/order.placed.v1.json),
// so that a change the consumers of an event would not understand fails a
// test in the module that makes it. Each events package calls Check from its
// own test; the rules it enforces are in docs/bus.md ("Evolving an event")
// and docs/adr/0025-event-contracts-are-golden-files.md.
//
// It imports only the standard library, like the events packages it checks.
package eventcontract

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Event is what an events package declares: a type with a stable,
// versioned name ("order.placed.v1"), as platform/bus registers it.
type Event interface {
	EventName() string
}

// Kind says how an event's wire shape changed against its golden file.
type Kind int

// The kinds of change. Only Added and Example leave the contract intact.
const (
	Added   Kind = iota // a field the golden file lacks: compatible if consumers may miss it
	Example             // the same field with another example value: not a contract change
	Removed             // a field of the golden file the type lacks (a rename is Removed and Added)
	Retyped             // a field whose JSON type changed (string, number, boolean, object, array, null)
)

func (k Kind) String() string {
	return [...]string{"added", "example", "removed", "retyped"}[k]
}

// Change is one difference between the golden file and the type.
type Change struct {
	Path   string // JSON path as encoding/json names it: lines.quantity for a line's quantity
	Kind   Kind
	Detail string
}

// Breaking reports whether the change breaks the event's consumers.
func (c Change) Breaking() bool { return c.Kind == Removed || c.Kind == Retyped }

func (c Change) String() string { return fmt.Sprintf("%-8s %s: %s", c.Kind, c.Path, c.Detail) }

// Check compares each example with testdata/<its event name>.json both ways:
// the example marshalled equals the golden file (names, JSON types,
// nesting, values), and the golden file decodes into the event's type with
// no unknown field and none missing. It also checks that each example sets
// every field (or the golden file could not show it), that the examples
// cover every event type declared in the package in the working directory
// (a test's), that every golden file belongs to an example, and that type
// names follow the version (OrderPlaced is v1; OrderPlacedV2 is v2).
//
// With update it writes the golden files from the examples instead of
// comparing them: how a compatible change (a field added, another example
// value) brings them up to date.
func Check(t *testing.T, update bool, examples ...Event) {
	t.Helper()
	if len(examples) == 0 {
		t.Fatal("eventcontract: no examples")
	}
	checkCoverage(t, examples)
	for _, ev := range examples {
		t.Run(ev.EventName(), func(t *testing.T) {
			checkOne(t, update, ev)
		})
	}
}

func checkOne(t *testing.T, update bool, ev Event) {
	name, typ := ev.EventName(), reflect.TypeOf(ev)
	if err := versionRule(typ.Name(), name); err != nil {
		t.Error(err)
	}
	if unset := unsetFields("", reflect.ValueOf(ev)); len(unset) > 0 {
		t.Errorf("the example of %s leaves %s unset: give every field a value, or the golden file cannot show it",
			typ, strings.Join(unset, ", "))
	}
	file := goldenFile(name)
	if update {
		encoded, err := encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, encoded, 0o644); err != nil { // #nosec G306 -- a test's golden file, checked in
			t.Fatal(err)
		}
		t.Logf("wrote %s: say in a line of the change which field was added", file)
		return
	}
	golden, err := os.ReadFile(file) // #nosec G304 -- testdata/<event name>.json
	if err != nil {
		t.Fatalf("%v: every event version has a golden file; write it with %s -update", err, packageCommand())
	}
	changes, err := Compare(golden, ev)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(changes) > 0 {
		t.Error(explain(file, typ, changes))
	}
}

// explain is the failure message: what changed, and what to do about it.
func explain(file string, typ reflect.Type, changes []Change) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s no longer matches %s:\n", typ, file)
	breaking, added := false, false
	for _, c := range changes {
		fmt.Fprintf(&b, "\t%s\n", c)
		breaking = breaking || c.Breaking()
		added = added || c.Kind == Added
	}
	switch {
	case breaking:
		b.WriteString("This breaks the event's consumers.\n")
	case added:
		b.WriteString("This keeps the contract if every consumer can do without the added fields.\n")
	default:
		b.WriteString("Only the example's values changed, not the contract.\n")
	}
	fmt.Fprintf(&b, "Adding an optional field is compatible: update the golden file (%s -update) and say so in a line of the change.\n", packageCommand())
	next, n := nextVersion(strings.TrimSuffix(filepath.Base(file), ".json"))
	fmt.Fprintf(&b, "Removing, renaming or retyping a field is a new version: put back %s as it was and add %sV%d, named %q, beside it, with a golden file of its own (docs/bus.md, \"Evolving an event\").",
		typ.Name(), versionSuffix.ReplaceAllString(typ.Name(), ""), n, next)
	return b.String()
}

// nextVersion turns "order.placed.v1" into "order.placed.v2" and 2.
func nextVersion(eventName string) (string, int) {
	base, n, err := splitVersion(eventName)
	if err != nil {
		return eventName + ".v2", 2
	}
	return fmt.Sprintf("%s.v%d", base, n+1), n + 1
}

func goldenFile(name string) string { return filepath.Join("testdata", name+".json") }

// encode is the golden file's form of an event: indented, one final newline.
func encode(ev Event) ([]byte, error) {
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", ev, err)
	}
	return append(b, '\n'), nil
}

// Compare lists how ev differs from the golden file: first as ev marshals,
// then as the golden file decodes into ev's type (strictly: an unknown field
// is an error, and the decoded value must marshal back to the golden file,
// so no field of the type is missing from it and every key matches a field
// exactly, not just ignoring case as encoding/json does).
func Compare(golden []byte, ev Event) ([]Change, error) {
	want, err := decodeAny(golden)
	if err != nil {
		return nil, fmt.Errorf("the golden file is not JSON: %w", err)
	}
	marshalled, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", ev, err)
	}
	got, err := decodeAny(marshalled)
	if err != nil {
		return nil, err
	}
	changes := diff("", want, got)
	changes = append(changes, decodeStrictly(golden, want, reflect.TypeOf(ev))...)
	return dedupe(changes), nil
}

// decodeStrictly decodes the golden file into a new value of typ and
// reports what does not fit.
func decodeStrictly(golden []byte, want any, typ reflect.Type) []Change {
	v := reflect.New(typ)
	dec := json.NewDecoder(bytes.NewReader(golden))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			return []Change{{Path: typeErr.Field, Kind: Retyped, Detail: fmt.Sprintf("the golden file's %s does not decode into the type's %s", typeErr.Value, typeErr.Type)}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return []Change{{Path: field, Kind: Removed, Detail: "in the golden file, no field of the type decodes it"}}
		default:
			return []Change{{Path: "(event)", Kind: Retyped, Detail: "the golden file does not decode into the type: " + err.Error()}}
		}
	}
	if dec.More() {
		return []Change{{Path: "(event)", Kind: Retyped, Detail: "the golden file holds more than one JSON value"}}
	}
	back, err := json.Marshal(v.Interface())
	if err != nil {
		return []Change{{Path: "(event)", Kind: Retyped, Detail: "the decoded golden file does not marshal: " + err.Error()}}
	}
	got, err := decodeAny(back)
	if err != nil {
		return []Change{{Path: "(event)", Kind: Retyped, Detail: err.Error()}}
	}
	var changes []Change
	for _, c := range diff("", want, got) {
		if c.Kind == Example {
			c.Kind, c.Detail = Retyped, "does not survive decoding and marshalling again: "+c.Detail
		}
		changes = append(changes, c)
	}
	return changes
}

func decodeAny(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// diff walks the golden value (want) and the type's (got) together.
func diff(path string, want, got any) []Change {
	if jsonType(want) != jsonType(got) {
		return []Change{{Path: pathOr(path), Kind: Retyped, Detail: fmt.Sprintf("%s in the golden file, %s in the type", jsonType(want), jsonType(got))}}
	}
	var changes []Change
	switch w := want.(type) {
	case map[string]any:
		g := got.(map[string]any)
		for _, k := range sortedKeys(w) {
			if gv, ok := g[k]; ok {
				changes = append(changes, diff(join(path, k), w[k], gv)...)
			} else {
				changes = append(changes, Change{Path: join(path, k), Kind: Removed, Detail: "in the golden file, not in the type"})
			}
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok {
				changes = append(changes, Change{Path: join(path, k), Kind: Added, Detail: "in the type, not in the golden file"})
			}
		}
	case []any:
		g := got.([]any)
		for i := range min(len(w), len(g)) {
			changes = append(changes, diff(path, w[i], g[i])...)
		}
		if len(w) != len(g) {
			changes = append(changes, Change{Path: pathOr(path), Kind: Example, Detail: fmt.Sprintf("%d elements in the golden file, %d in the example", len(w), len(g))})
		}
	default:
		if want != got {
			changes = append(changes, Change{Path: pathOr(path), Kind: Example, Detail: fmt.Sprintf("%v in the golden file, %v in the example", want, got)})
		}
	}
	return changes
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOr(path string) string {
	if path == "" {
		return "(event)"
	}
	return path
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// dedupe keeps the first change per path and kind: array elements repeat
// theirs, and decoding names what marshalling found again (an unknown field
// by its key alone: sku for lines.sku).
func dedupe(changes []Change) []Change {
	var out []Change
	for _, c := range changes {
		if !slices.ContainsFunc(out, func(o Change) bool {
			return o.Kind == c.Kind && (o.Path == c.Path || strings.HasSuffix(o.Path, "."+c.Path))
		}) {
			out = append(out, c)
		}
	}
	return out
}

var (
	jsonMarshaler = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// unsetFields lists the JSON paths of v's zero values: fields, empty slices
// and maps, and their elements' fields. A type that marshals itself (such
// as time.Time) counts as one value.
func unsetFields(path string, v reflect.Value) []string {
	if !v.IsValid() || v.IsZero() {
		return []string{pathOr(path)}
	}
	if v.Type().Implements(jsonMarshaler) || v.Type().Implements(textMarshaler) {
		return nil
	}
	var unset []string
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		return unsetFields(path, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			if f.Anonymous && name == "" {
				unset = append(unset, unsetFields(path, v.Field(i))...)
				continue
			}
			if name == "" {
				name = f.Name
			}
			unset = append(unset, unsetFields(join(path, name), v.Field(i))...)
		}
	case reflect.Slice, reflect.Array, reflect.Map:
		if v.Len() == 0 {
			return []string{pathOr(path)}
		}
		if v.Kind() == reflect.Map {
			for _, k := range v.MapKeys() {
				unset = append(unset, unsetFields(path, v.MapIndex(k))...)
			}
			break
		}
		for i := range v.Len() {
			unset = append(unset, unsetFields(path, v.Index(i))...)
		}
	}
	return unset
}

// jsonName is the field's JSON name ("" for the Go name) and whether
// encoding/json writes the field at all.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() && !f.Anonymous {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	return name, true
}

// versionSuffix is the version at the end of a later version's type name.
var versionSuffix = regexp.MustCompile(`V([0-9]+)$`)

// versionRule: the type of an event's first version has the plain name
// (OrderPlaced for order.placed.v1); version N ≥ 2 is a type of its own
// whose name ends in VN (OrderPlacedV2 for order.placed.v2).
func versionRule(typeName, eventName string) error {
	_, n, err := splitVersion(eventName)
	if err != nil {
		return err
	}
	suffix := versionSuffix.FindString(typeName)
	switch {
	case n == 1 && suffix != "":
		return fmt.Errorf("%s is version 1 of %s: the first version's type has the plain name, without %s", typeName, eventName, suffix)
	case n > 1 && suffix != "V"+strconv.Itoa(n):
		return fmt.Errorf("%s is version %d of %s: its type's name ends in V%d, beside the earlier versions' types", typeName, n, eventName, n)
	}
	return nil
}

// splitVersion splits "order.placed.v2" into "order.placed" and 2.
func splitVersion(eventName string) (string, int, error) {
	i := strings.LastIndex(eventName, ".v")
	if i < 0 {
		return "", 0, fmt.Errorf("event name %q has no version (module.thing.v1)", eventName)
	}
	n, err := strconv.Atoi(eventName[i+2:])
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("event name %q has no version (module.thing.v1)", eventName)
	}
	return eventName[:i], n, nil
}

// checkCoverage: one example per event type the package declares, one
// golden file per example, no event name twice.
func checkCoverage(t *testing.T, examples []Event) {
	t.Helper()
	declared, err := declaredEvents(".")
	if err != nil {
		t.Fatal(err)
	}
	byType, names := map[string]bool{}, map[string]bool{}
	for _, ev := range examples {
		if names[ev.EventName()] {
			t.Errorf("two examples of %s", ev.EventName())
		}
		names[ev.EventName()] = true
		byType[reflect.TypeOf(ev).Name()] = true
	}
	for _, typ := range declared {
		if !byType[typ] {
			t.Errorf("event type %s has no example in this test: every event version needs a golden file", typ)
		}
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !names[strings.TrimSuffix(filepath.Base(f), ".json")] {
			t.Errorf("%s belongs to no event here: a version goes only once no consumer needs it (docs/bus.md, \"Evolving an event\"), and its golden file with it", f)
		}
	}
}

// declaredEvents lists the types with an EventName method that the non-test
// files of the package in dir declare.
func declaredEvents(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var types []string
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Name.Name != "EventName" || fn.Recv == nil || len(fn.Recv.List) != 1 {
				continue
			}
			recv := fn.Recv.List[0].Type
			if star, ok := recv.(*ast.StarExpr); ok {
				recv = star.X
			}
			if id, ok := recv.(*ast.Ident); ok {
				types = append(types, id.Name)
			}
		}
	}
	if len(types) == 0 {
		return nil, fmt.Errorf("no type with an EventName method in %s", dir)
	}
	return types, nil
}

// packageCommand is "go test ./modules/order/events", the command that
// runs the current package's tests from the module's root.
func packageCommand() string {
	wd, err := os.Getwd()
	if err != nil {
		return "go test ."
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil {
				break
			}
			return "go test ./" + filepath.ToSlash(rel)
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "go test ."
}
