package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return NewProblem(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit))
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
	case strings.HasPrefix(err.Error(), "json: unknown field "):
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
