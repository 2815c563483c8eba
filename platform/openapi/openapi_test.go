package openapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// things is a module fragment as a module would embed it: a path using a
// schema of its own and the base document's Problem response.
var things = []byte(`
paths:
  /api/v1/things/{id}:
    get:
      operationId: getThing
      parameters:
        - { name: id, in: path, required: true, schema: { type: string } }
      responses:
        "200":
          description: One thing
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Thing" }
        404: { $ref: "#/components/responses/Problem" }
components:
  schemas:
    Thing:
      type: object
      required: [id]
      properties:
        id: { type: string }
`)

var widgets = []byte(`
paths:
  /api/v1/widgets:
    get:
      operationId: listWidgets
      responses:
        "200": { description: Widgets }
`)

func TestBuild_BaseAloneIsAValidDocument(t *testing.T) {
	t.Parallel()
	doc, raw, err := Build()
	if err != nil {
		t.Fatalf("Build(): %v", err)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/api/openapi.json"} {
		if doc.Paths.Find(p) == nil {
			t.Errorf("platform path %s is not documented", p)
		}
	}
	if doc.Components.Schemas["Problem"] == nil {
		t.Error("the shared Problem schema is missing")
	}
	if !json.Valid(raw) {
		t.Error("the served document is not JSON")
	}
}

func TestBuild_MergesModuleFragments(t *testing.T) {
	t.Parallel()
	doc, raw, err := Build(things, widgets)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	thing := doc.Paths.Find("/api/v1/things/{id}")
	if thing == nil || thing.Get == nil || thing.Get.OperationID != "getThing" {
		t.Fatalf("/api/v1/things/{id} not merged: %+v", thing)
	}
	if doc.Paths.Find("/api/v1/widgets") == nil || doc.Paths.Find("/healthz") == nil {
		t.Fatal("a fragment's paths replaced the others instead of joining them")
	}
	// The fragment's own schema and the base's shared response both resolve.
	resp := thing.Get.Responses.Value("200").Value.Content.Get("application/json").Schema
	if resp.Value == nil || resp.Value.Properties["id"] == nil {
		t.Errorf("the Thing schema did not resolve: %+v", resp)
	}
	// An unquoted response code (YAML reads 404 as a number) works too.
	notFound := thing.Get.Responses.Value("404")
	if notFound == nil || notFound.Value.Content.Get("application/problem+json") == nil {
		t.Errorf("404 (unquoted in YAML) not merged as the shared Problem response")
	}
	if !strings.Contains(string(raw), `"/api/v1/widgets"`) || !strings.Contains(string(raw), `"Thing"`) {
		t.Error("the served JSON lacks a fragment's path or schema")
	}
}

func TestBuild_IsRepeatable(t *testing.T) {
	t.Parallel()
	// Merging must not change the embedded base: a second shop in the same
	// process (tests start many) would see the first one's paths twice.
	for range 2 {
		if _, _, err := Build(things); err != nil {
			t.Fatalf("Build: %v", err)
		}
	}
}

func TestBuild_RefusesDuplicatesInsteadOfOverwriting(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		fragments [][]byte
		want      string
	}{
		"same path in two modules": {[][]byte{widgets, widgets}, `"/api/v1/widgets" is defined twice`},
		"a platform path": {[][]byte{[]byte(`
paths:
  /healthz:
    get: { responses: { "200": { description: mine } } }
`)}, `"/healthz" is defined twice`},
		"a shared schema name": {[][]byte{[]byte(`
components:
  schemas:
    Problem: { type: string }
`)}, `"Problem" is defined twice`},
		"same schema in two modules": {[][]byte{things, []byte(`
components:
  schemas:
    Thing: { type: string }
`)}, `"Thing" is defined twice`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Build(tt.fragments...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build: err = %v, want it to say %s", err, tt.want)
			}
		})
	}
}

func TestBuild_RefusesFragmentsThatWouldMakeABadDocument(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ fragment, want string }{
		"not YAML":                {"paths: [unclosed", "fragment 0"},
		"other top-level key":     {"info: { title: mine }", `not "info"`},
		"paths not a map":         {"paths: [a, b]", "paths must be a map"},
		"components not a map":    {"components: 3", "components must be a map"},
		"reference to no schema":  {"paths:\n  /api/v1/x:\n    get:\n      responses:\n        \"200\":\n          description: x\n          content:\n            application/json:\n              schema: { $ref: \"#/components/schemas/Nope\" }\n", "Nope"},
		"operation with no reply": {"paths:\n  /api/v1/x:\n    get: { operationId: x }\n", "invalid openapi document"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Build([]byte(tt.fragment))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Build: err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// Every API operation may answer 503 while the database is away; the
// document says so, with the Retry-After header, without each module
// writing it down. An operation's own 503 is kept.
func TestBuild_EveryAPIOperationDocuments503WithRetryAfter(t *testing.T) {
	t.Parallel()
	own := []byte(`
paths:
  /api/v1/gadgets:
    get:
      operationId: listGadgets
      responses:
        "200": { description: Gadgets }
        "503": { description: Gadgets are asleep }
`)
	doc, _, err := Build(things, widgets, own)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	for _, path := range []string{"/api/v1/things/{id}", "/api/v1/widgets"} {
		r := doc.Paths.Find(path).Get.Responses.Value("503")
		if r == nil || r.Value.Headers["Retry-After"] == nil || r.Value.Content.Get("application/problem+json") == nil {
			t.Errorf("%s: no 503 problem with Retry-After: %+v", path, r)
		}
	}
	if d := doc.Paths.Find("/api/v1/gadgets").Get.Responses.Value("503").Value.Description; d == nil || *d != "Gadgets are asleep" {
		t.Errorf("an operation's own 503 was replaced: %v", d)
	}
	if doc.Paths.Find("/healthz").Get.Responses.Value("503") != nil {
		t.Error("/healthz, which needs no database, documents a 503")
	}
}
