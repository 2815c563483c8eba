package main

import (
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// operation is one documented method on one path.
type operation struct {
	method, path string
	op           *openapi3.Operation
	params       openapi3.Parameters // the path's and the operation's
}

func operations(doc *openapi3.T) []operation {
	var out []operation
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			params := slices.Clone(item.Parameters)
			params = append(params, op.Parameters...)
			out = append(out, operation{method: method, path: path, op: op, params: params})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path+out[i].method < out[j].path+out[j].method })
	return out
}

// example is a value the parameter's schema accepts.
func example(s *openapi3.Schema) string {
	switch {
	case len(s.Enum) > 0:
		return s.Enum[0].(string)
	case s.Type.Is("integer"):
		if s.Min != nil {
			return strconv.Itoa(int(*s.Min))
		}
		return "1"
	case s.Type.Is("boolean"):
		return "false"
	case s.Format == "uuid":
		return uuid.NewString()
	default:
		return "x"
	}
}

// url makes the operation's URL: path parameters and required query
// parameters get a value their schema accepts, then set is applied.
func (o operation) url(set map[string]string) string {
	path, q := o.path, url.Values{}
	for _, ref := range o.params {
		p := ref.Value
		switch {
		case p.In == "path":
			path = strings.ReplaceAll(path, "{"+p.Name+"}", example(p.Schema.Value))
		case p.In == "query" && p.Required:
			q.Set(p.Name, example(p.Schema.Value))
		}
	}
	for k, v := range set {
		q.Set(k, v)
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// refuses reports whether the shop refuses the value of query parameter
// name with a 422 that names it.
func refuses(t *testing.T, api *testkit.API, token string, o operation, name, value string) bool {
	t.Helper()
	r := api.Do(o.method, o.url(map[string]string{name: value}), nil, testkit.Bearer(token))
	if r.Status >= 500 {
		t.Fatalf("%s %s with %s=%q: %d %s", o.method, o.path, name, value, r.Status, r.Body)
	}
	if r.Status != 422 {
		return false
	}
	var p struct{ Errors []struct{ Field string } }
	r.Decode(t, &p)
	return slices.ContainsFunc(p.Errors, func(e struct{ Field string }) bool { return e.Field == name })
}

// TestDocument_QueryParametersAreTypedAsTheShopReadsThem asks the shop
// itself: a parameter for which it refuses "x" but takes "7" is a number,
// and a client generated from the document must see an integer; an
// integer's documented bounds are the shop's; an enum's values are all
// taken and nothing else is.
func TestDocument_QueryParametersAreTypedAsTheShopReadsThem(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	_, admin := shop.Admin(t)
	for _, o := range operations(shop.OpenAPI()) {
		if o.method != "GET" {
			continue // probing must change nothing
		}
		for _, ref := range o.params {
			p := ref.Value
			if p.In != "query" {
				continue
			}
			s := p.Schema.Value
			where := o.method + " " + o.path + " ?" + p.Name
			number := s.Type.Is("string") && refuses(t, shop.API, admin, o, p.Name, "x") && !refuses(t, shop.API, admin, o, p.Name, "7")
			switch {
			case number && !s.Type.Is("integer"):
				t.Errorf("%s: the shop reads it as a whole number, the document types it %v", where, s.Type)
			case s.Type.Is("integer"):
				if !refuses(t, shop.API, admin, o, p.Name, "x") {
					t.Errorf("%s: typed integer, but the shop takes x", where)
				}
				if s.Min == nil || s.Max == nil {
					t.Errorf("%s: an integer without minimum and maximum", where)
					continue
				}
				lo, hi := int(*s.Min), int(*s.Max)
				for _, v := range []int{lo, hi} {
					if refuses(t, shop.API, admin, o, p.Name, strconv.Itoa(v)) {
						t.Errorf("%s: the shop refuses %d, which the document allows", where, v)
					}
				}
				for _, v := range []int{lo - 1, hi + 1} {
					if !refuses(t, shop.API, admin, o, p.Name, strconv.Itoa(v)) {
						t.Errorf("%s: the shop takes %d, which the document does not allow", where, v)
					}
				}
			case len(s.Enum) > 0:
				for _, v := range s.Enum {
					if refuses(t, shop.API, admin, o, p.Name, v.(string)) {
						t.Errorf("%s: the shop refuses %q, one of the document's values", where, v)
					}
				}
				if !refuses(t, shop.API, admin, o, p.Name, "no-such-value") {
					t.Errorf("%s: the shop takes a value the document's enum does not list", where)
				}
			}
		}
	}
}

// TestDocument_EveryParameterHasAType: no parameter is left to a
// generator's guess, and an id says what it is.
func TestDocument_EveryParameterHasAType(t *testing.T) {
	t.Parallel()
	doc := document(t)
	for _, o := range operations(doc) {
		for _, ref := range o.params {
			p := ref.Value
			where := o.method + " " + o.path + " " + p.In + " " + p.Name
			if p.Schema == nil || p.Schema.Value.Type == nil || len(p.Schema.Value.Type.Slice()) != 1 {
				t.Errorf("%s: no single type", where)
				continue
			}
			s := p.Schema.Value
			if (p.Name == "id" || strings.HasSuffix(p.Name, "_id")) && s.Format != "uuid" && !s.Type.Is("integer") {
				t.Errorf("%s: an id typed %v with format %q, want a uuid or an integer", where, s.Type, s.Format)
			}
		}
	}
}

// TestDocument_SecurityIsWhatTheShopAsks: an operation that declares no
// security answers an anonymous caller with something other than 401, and
// every other operation answers it 401.
func TestDocument_SecurityIsWhatTheShopAsks(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	for _, o := range operations(shop.OpenAPI()) {
		if o.op.Security == nil {
			t.Errorf("%s %s declares no security (public operations say security: [])", o.method, o.path)
			continue
		}
		public := len(*o.op.Security) == 0
		var body any
		if o.op.RequestBody != nil {
			body = map[string]any{} // invalid, but the shop asks who is calling first
		}
		r := shop.API.Do(o.method, o.url(nil), body)
		if public && r.Status == 401 {
			t.Errorf("%s %s: documented as public, but an anonymous call gets 401", o.method, o.path)
		}
		if !public && r.Status != 401 {
			t.Errorf("%s %s: documented as needing a session, but an anonymous call gets %d", o.method, o.path, r.Status)
		}
	}
}

func document(t *testing.T) *openapi3.T {
	t.Helper()
	raw, err := app.OpenAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
