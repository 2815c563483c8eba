// Package openapi assembles the service's OpenAPI 3 document from a base
// (platform endpoints and shared components) and one fragment per module,
// so each module documents its own endpoints next to its code.
package openapi

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

//go:embed base.yaml
var base []byte

// Build merges the module fragments (YAML with top-level paths and
// components) into the base document and validates the result.
func Build(fragments ...[]byte) (*openapi3.T, []byte, error) {
	doc, err := decode(base)
	if err != nil {
		return nil, nil, fmt.Errorf("openapi base: %w", err)
	}
	for i, f := range fragments {
		frag, err := decode(f)
		if err != nil {
			return nil, nil, fmt.Errorf("openapi fragment %d: %w", i, err)
		}
		if err := merge(doc, frag); err != nil {
			return nil, nil, fmt.Errorf("openapi fragment %d: %w", i, err)
		}
	}
	documentUnavailable(doc)
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("encode openapi: %w", err)
	}
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("load openapi: %w", err)
	}
	if err := t.Validate(context.Background()); err != nil {
		return nil, nil, fmt.Errorf("invalid openapi document: %w", err)
	}
	return t, raw, nil
}

func decode(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return stringKeys(m).(map[string]any), nil
}

// stringKeys turns every map into a map[string]any. YAML reads an unquoted
// response code (200:) as a number, and a map holding one as map[any]any,
// which JSON cannot encode; OpenAPI means the string "200".
func stringKeys(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = stringKeys(e)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = stringKeys(e)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = stringKeys(e)
		}
		return v
	default:
		return v
	}
}

// merge adds frag's paths and components to doc; a name defined twice is
// an error rather than a silent overwrite.
func merge(doc, frag map[string]any) error {
	for key, val := range frag {
		switch key {
		case "paths":
			if err := mergeInto(doc, "paths", val); err != nil {
				return err
			}
		case "components":
			comps, ok := val.(map[string]any)
			if !ok {
				return fmt.Errorf("components must be a map")
			}
			dst, _ := doc["components"].(map[string]any)
			if dst == nil {
				dst = map[string]any{}
				doc["components"] = dst
			}
			for kind, v := range comps {
				if err := mergeInto(dst, kind, v); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("a fragment may only hold paths and components, not %q", key)
		}
	}
	return nil
}

func mergeInto(parent map[string]any, key string, val any) error {
	src, ok := val.(map[string]any)
	if !ok {
		return fmt.Errorf("%s must be a map", key)
	}
	dst, _ := parent[key].(map[string]any)
	if dst == nil {
		dst = map[string]any{}
		parent[key] = dst
	}
	for name, v := range src {
		if _, dup := dst[name]; dup {
			return fmt.Errorf("%s %q is defined twice", key, name)
		}
		dst[name] = v
	}
	return nil
}

// documentUnavailable adds the 503 that every API operation may answer
// while the database is away (components/responses/Unavailable, with
// Retry-After) to each operation under /api/ that does not document a 503
// of its own: the platform answers it, so the platform documents it.
func documentUnavailable(doc map[string]any) {
	paths, _ := doc["paths"].(map[string]any)
	for path, item := range paths {
		ops, ok := item.(map[string]any)
		if !ok || !strings.HasPrefix(path, "/api/v") {
			continue
		}
		for method, op := range ops {
			o, ok := op.(map[string]any)
			if !ok || !httpMethods[method] {
				continue
			}
			responses, _ := o["responses"].(map[string]any)
			if responses == nil {
				continue // Validate reports the missing responses
			}
			if _, own := responses["503"]; !own {
				responses["503"] = map[string]any{"$ref": "#/components/responses/Unavailable"}
			}
		}
	}
}

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}
