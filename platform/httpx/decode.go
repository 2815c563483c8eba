package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// DecodeJSON reads the request body into dst strictly: the body must be
// JSON (by Content-Type and by content), valid UTF-8, one object with no
// unknown fields and nothing after it. Unknown fields are refused so that a
// client can never set what it must not (a price, a status, a role).
// The error it returns is a *Problem ready to send.
func DecodeJSON(c *gin.Context, dst any) error {
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
		}
	}
	body, err := readAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return BodyTooLarge(tooBig.Limit)
		}
		return BadRequest("the body could not be read")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return BadRequest("the body is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return BadRequest("the body is not valid UTF-8")
	}
	// encoding/json reads null into a struct as "nothing": not an object.
	if trimmed[0] != '{' {
		return BadRequest("the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		if isUnknownField(err) {
			if detail, ok := describeUnknownField(body, reflect.TypeOf(dst)); ok {
				return BadRequest(detail)
			}
		}
		return BadRequest(describeJSONError(err))
	}
	if dec.More() {
		return BadRequest("the body holds more than one JSON value")
	}
	if _, err := dec.Token(); err != io.EOF {
		return BadRequest("the body holds more than one JSON value")
	}
	if hasEscapedNUL(body) {
		return BadRequest(`the body holds a NUL character (\u0000), which no field accepts`)
	}
	return nil
}

// hasEscapedNUL reports whether valid JSON holds \u0000 in a string:
// PostgreSQL cannot store NUL in text, so such a value would fail deep in a
// store with a 500 instead of here with a 400. Backslashes occur only in
// strings, so skipping each escape is enough to read them right.
func hasEscapedNUL(body []byte) bool {
	for i := 0; i < len(body); i++ {
		if body[i] != '\\' {
			continue
		}
		if bytes.HasPrefix(body[i+1:], []byte("u0000")) {
			return true
		}
		i++ // skip the escaped character, so \\u0000 is not read as NUL
	}
	return false
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return "the body must be a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: the body ends too early"
	case isUnknownField(err):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	default:
		return "malformed JSON"
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	case "bool":
		return "true or false"
	default:
		return "a number"
	}
}

// isUnknownField reports whether err is encoding/json refusing a field the
// target does not have (it has no error type of its own for that).
func isUnknownField(err error) bool {
	return strings.HasPrefix(err.Error(), "json: unknown field ")
}

// describeUnknownField says which field of body its target type t does not
// have (the first in the body, as encoding/json reports it), where in the
// body it is, and which fields the target has there: a client that sent
// "user" for "login" learns the right name from the answer.
func describeUnknownField(body []byte, t reflect.Type) (string, bool) {
	where, key, allowed, ok := findUnknownField(body, t, "")
	if !ok {
		return "", false
	}
	quoted := make([]string, len(allowed))
	for i, name := range allowed {
		quoted[i] = fmt.Sprintf("%q", name)
	}
	if where == "" {
		return fmt.Sprintf("unknown field %q; the fields are %s", key, strings.Join(quoted, ", ")), true
	}
	return fmt.Sprintf("unknown field %q in %s; the fields there are %s", key, where, strings.Join(quoted, ", ")), true
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// findUnknownField walks the JSON value raw along the Go type t that it was
// decoded into, as encoding/json does, and stops at the first object key
// that t has no field for. path is where raw is in the body.
func findUnknownField(raw []byte, t reflect.Type, path string) (where, key string, allowed []string, ok bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return "", "", nil, false // it reads its own JSON
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		for _, m := range objectMembers(raw) {
			f, known := lookupField(fields, m.key)
			if !known {
				names := make([]string, len(fields))
				for i, f := range fields {
					names[i] = f.name
				}
				return path, m.key, names, true
			}
			if w, k, a, ok := findUnknownField(m.value, f.typ, joinPath(path, m.key)); ok {
				return w, k, a, true
			}
		}
	case reflect.Map:
		for _, m := range objectMembers(raw) {
			if w, k, a, ok := findUnknownField(m.value, t.Elem(), joinPath(path, m.key)); ok {
				return w, k, a, true
			}
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return "", "", nil, false
		}
		for i, e := range elems {
			if w, k, a, ok := findUnknownField(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); ok {
				return w, k, a, true
			}
		}
	}
	return "", "", nil, false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the fields encoding/json reads into a struct, by their
// JSON names: exported fields not tagged "-", with the fields of embedded
// structs in their place.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type})
	}
	return out
}

// lookupField finds the field a JSON key sets: the one of that name, or
// else one whose name differs only in case, as encoding/json matches.
func lookupField(fields []jsonField, key string) (jsonField, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return jsonField{}, false
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers lists the members of a JSON object in their order (none
// when raw is not an object).
func objectMembers(raw []byte) []member {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		key, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return out
		}
		out = append(out, member{key: key, value: value})
	}
	return out
}
