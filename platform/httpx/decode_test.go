package httpx

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

type registration struct {
	Username string   `json:"username"`
	Age      int      `json:"age"`
	Tags     []string `json:"tags"`
}

// decode runs DecodeJSON on a request as gin would hand it to a handler;
// limit > 0 caps the body as LimitBody does.
func decode(t *testing.T, contentType string, body io.Reader, limit int64) (registration, *Problem) {
	t.Helper()
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/users", body)
	if contentType != "" {
		c.Request.Header.Set("Content-Type", contentType)
	}
	if limit > 0 {
		c.Request.Body = http.MaxBytesReader(w, c.Request.Body, limit)
	}
	var dst registration
	err := DecodeJSON(c, &dst)
	if err == nil {
		return dst, nil
	}
	p, ok := err.(*Problem)
	if !ok {
		t.Fatalf("DecodeJSON returned %T %v, want a *Problem", err, err)
	}
	return dst, p
}

func TestDecodeJSON_AcceptsOneWellFormedObject(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ contentType, body string }{
		"plain":                  {"application/json", `{"username":"alice","age":30,"tags":["a"]}`},
		"with charset":           {"application/json; charset=utf-8", `{"username":"alice","age":30,"tags":["a"]}`},
		"upper-case media type":  {"Application/JSON", `{"username":"alice","age":30,"tags":["a"]}`},
		"a +json type":           {"application/merge-patch+json", `{"username":"alice","age":30,"tags":["a"]}`},
		"surrounded by space":    {"application/json", "\n  {\"username\":\"alice\",\"age\":30,\"tags\":[\"a\"]}  \r\n"},
		"unicode and escapes":    {"application/json", `{"username":"al\u00efce","age":30,"tags":["a"]}`},
		"escaped backslash + u0": {"application/json", `{"username":"alice","age":30,"tags":["a\\u0000"]}`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, p := decode(t, tt.contentType, strings.NewReader(tt.body), 0)
			if p != nil {
				t.Fatalf("DecodeJSON refused %s: %v", tt.body, p)
			}
			if got.Age != 30 || len(got.Tags) != 1 || !strings.HasPrefix(got.Username, "al") {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func TestDecodeJSON_RefusesBadBodiesWithAProblemThatSaysWhy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, contentType, body string
		status                  int
		detail                  string
	}{
		{"empty", "application/json", "", 400, "empty"},
		{"only space", "application/json", " \n\t", 400, "empty"},
		{"malformed", "application/json", `{"username":`, 400, "malformed JSON"},
		{"broken syntax", "application/json", `{"username" "alice"}`, 400, "malformed JSON at byte"},
		{"unknown field", "application/json", `{"username":"alice","roles":["admin"]}`, 400, `unknown field "roles"`},
		{"two objects", "application/json", `{"username":"a"}{"username":"b"}`, 400, "more than one JSON value"},
		{"trailing garbage", "application/json", `{"username":"a"} x`, 400, "more than one JSON value"},
		{"trailing bracket", "application/json", `{"username":"a"}]`, 400, "more than one JSON value"},
		{"invalid UTF-8", "application/json", "{\"username\":\"al\xffce\"}", 400, "UTF-8"},
		{"null", "application/json", `null`, 400, "JSON object"},
		{"array", "application/json", `[{"username":"a"}]`, 400, "JSON object"},
		{"string", "application/json", `"alice"`, 400, "JSON object"},
		{"wrong field type", "application/json", `{"age":"thirty"}`, 400, `"age" must be a number`},
		{"string where list", "application/json", `{"tags":"a"}`, 400, `"tags" must be an array`},
		{"NUL in a string", "application/json", `{"username":"a\u0000b"}`, 400, "NUL"},
		{"text/plain", "text/plain", `{"username":"alice"}`, 415, "application/json"},
		{"a form", "application/x-www-form-urlencoded", `username=alice`, 415, "application/json"},
		{"unparsable content type", "application/json; charset", `{"username":"alice"}`, 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, p := decode(t, tt.contentType, strings.NewReader(tt.body), 0)
			if p == nil {
				t.Fatalf("DecodeJSON accepted %q", tt.body)
			}
			if p.Status != tt.status || !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("problem = %d %q, want %d saying %q", p.Status, p.Detail, tt.status, tt.detail)
			}
		})
	}
}

// chunked hides the length, as a client streaming its body does, so only
// the reader can notice the body is too large.
type chunked struct{ io.Reader }

func TestDecodeJSON_TooLargeBodyIs413(t *testing.T) {
	t.Parallel()
	body := `{"username":"` + strings.Repeat("a", 2<<20) + `"}`
	_, p := decode(t, "application/json", chunked{strings.NewReader(body)}, 1<<20)
	if p == nil || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MB body under a 1 MB limit: problem %v, want 413", p)
	}
	if !strings.Contains(p.Detail, "1048576") {
		t.Errorf("detail %q does not say the limit", p.Detail)
	}
	// Just under the limit is fine.
	small := `{"username":"` + strings.Repeat("a", 1000) + `"}`
	if _, p := decode(t, "application/json", bytes.NewReader([]byte(small)), int64(len(small))); p != nil {
		t.Fatalf("body exactly at the limit refused: %v", p)
	}
}

// order has nested objects, an embedded struct, a field without a tag and
// one hidden from JSON, as request bodies of the modules do.
type order struct {
	Items   []orderLine       `json:"items"`
	Address *address          `json:"address,omitempty"`
	Notes   map[string]noteIn `json:"notes"`
	Method  string            `json:"payment_method"`
	Secret  string            `json:"-"`
	Comment string
	audit
}

type orderLine struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

type address struct {
	City string `json:"city"`
}

type noteIn struct {
	Text string `json:"text"`
}

type audit struct {
	Source string `json:"source"`
}

// A client that sends a field the server does not know learns which fields
// it does know, at the place in the body where it went wrong.
func TestDecodeJSON_UnknownFieldNamesTheAllowedOnes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		dst        any
		detail     string
	}{
		{"top level", `{"username":"alice","roles":["admin"]}`, &registration{},
			`unknown field "roles"; the fields are "username", "age", "tags"`},
		{"a near miss", `{"user":"alice","password":"x"}`, &struct {
			Login    string `json:"login"`
			Password string `json:"password"`
		}{}, `unknown field "user"; the fields are "login", "password"`},
		{"in an array element", `{"items":[{"product_id":"a","quantity":1},{"product_id":"b","qty":2}]}`, &order{},
			`unknown field "qty" in items[1]; the fields there are "product_id", "quantity"`},
		{"in a pointer to an object", `{"address":{"town":"Oslo"}}`, &order{},
			`unknown field "town" in address; the fields there are "city"`},
		{"in a map value", `{"notes":{"gift":{"txt":"hi"}}}`, &order{},
			`unknown field "txt" in notes.gift; the fields there are "text"`},
		{"hidden and embedded fields", `{"Secret":"x"}`, &order{},
			`unknown field "Secret"; the fields are "items", "address", "notes", "payment_method", "Comment", "source"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			c, _ := gin.CreateTestContext(w)
			c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/x", strings.NewReader(tt.body))
			c.Request.Header.Set("Content-Type", "application/json")
			err := DecodeJSON(c, tt.dst)
			p, ok := err.(*Problem)
			if !ok {
				t.Fatalf("DecodeJSON(%s) = %v, want a problem", tt.body, err)
			}
			if p.Status != http.StatusBadRequest || p.Detail != tt.detail {
				t.Fatalf("problem = %d %q\nwant      400 %q", p.Status, p.Detail, tt.detail)
			}
		})
	}
}

// Field names match as encoding/json matches them (case-insensitively), so
// the search for the unknown field agrees with the decoder on what is known.
func TestDecodeJSON_FieldNamesMatchLikeEncodingJSON(t *testing.T) {
	t.Parallel()
	got, p := decode(t, "application/json", strings.NewReader(`{"USERNAME":"alice","Age":3,"tags":[]}`), 0)
	if p != nil || got.Username != "alice" || got.Age != 3 {
		t.Fatalf("decoded %+v, %v", got, p)
	}
}
