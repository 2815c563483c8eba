package fuzz_test

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// FuzzSearch fuzzes the catalog's search text and category filter: every
// text answers 200 or 4xx, and a page's next_cursor leads to the next page.
func FuzzSearch(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "GET", "/api/v1/products?q=mug", nil)
	for _, q := range []string{
		"mug", "ceramic mug", "mugs", `"ceramic mug"`, "mug or teapot", "mug -teapot", "-mug", "mug -", "- - -", "or", "or or or",
		"the", "a & b | c", "!mug", "mug:*", "mug:A", "(mug)", "<->", "mug <-> teapot", `\`, "'", `"`, `""`, `"mug`, "'mug'",
		strings.Repeat("-", 20) + "mug", // the bound; beyond it see testdata/fuzz/FuzzSearch (a 500 once)
		strings.Repeat("mug or ", 28) + "mug", strings.Repeat(`"a b" `, 33), strings.Repeat("a", 200), strings.Repeat("a", 201),
		strings.Repeat("ü", 200), "Tasse à café ☕ 𝄞", "\u202emug", "mug\u0000", "\xff\xfe", "    ", "\t\n", "%", "_", "*",
		"$PRODUCT", "FUZZ-MUG", "fuzz-mug", "99999999.99",
	} {
		f.Add(q, "")
	}
	for _, category := range []string{"$CATEGORY", "missing", "Fuzz-Kitchen", "a--b", "-", strings.Repeat("a", 61), "ü", "a\x00"} {
		f.Add("mug", category)
	}
	f.Fuzz(func(t *testing.T, q, category string) {
		params := url.Values{"q": {s.placehold.Replace(q)}, "limit": {"1"}}
		if category != "" {
			params.Set("category", s.placehold.Replace(category))
		}
		r := s.send(t, "GET", "/api/v1/products?"+params.Encode(), nil)
		if r.Status != 200 {
			return
		}
		var page struct {
			NextCursor *string `json:"next_cursor"`
		}
		r.Decode(t, &page)
		if page.NextCursor != nil {
			params.Set("cursor", *page.NextCursor)
			if next := s.send(t, "GET", "/api/v1/products?"+params.Encode(), nil); next.Status != 200 {
				t.Errorf("the next page of q=%q: %d %s", q, next.Status, next.Body)
			}
		}
	})
}

// cursorFrom returns a listing's first next_cursor, decoded, with the
// shop's ids in it put back as placeholders: the seeds edit a real cursor,
// and a seed must mean the same in every process that fuzzes (each has a
// shop of its own).
func (s *shop) cursorFrom(f *testing.F, path string, opts ...testkit.Option) string {
	f.Helper()
	r := s.API.Do("GET", path, nil, opts...)
	var page struct {
		NextCursor *string `json:"next_cursor"`
	}
	r.Decode(f, &page)
	if r.Status != 200 || page.NextCursor == nil {
		f.Fatalf("GET %s: %d %s, want a page with a next_cursor", path, r.Status, r.Body)
	}
	raw, err := base64.RawURLEncoding.DecodeString(*page.NextCursor)
	if err != nil {
		f.Fatalf("GET %s: next_cursor %q: %v", path, *page.NextCursor, err)
	}
	out := string(raw)
	for name, value := range s.vars {
		out = strings.ReplaceAll(out, value, name)
	}
	return out
}

// cursorParam is how a fuzzed cursor travels: as it is when raw, else
// encoded as the shop encodes its cursors, so that the fuzzer works on
// what the shop decodes rather than on base64.
func cursorParam(cursor []byte, raw bool) string {
	if raw {
		return string(cursor)
	}
	return base64.RawURLEncoding.EncodeToString(cursor)
}

// timeCursorSeeds are cursors of the users' and orders' form, time|id,
// around a real one.
func timeCursorSeeds(real, id string) []string {
	return []string{real, "2024-01-01T00:00:00Z|" + id, "2024-01-01T00:00:00.123456789+14:00|" + id,
		"0001-01-01T00:00:00Z|" + id, "0000-01-01T00:00:00Z|" + id, "9999-12-31T23:59:59.999999999Z|" + id,
		"2024-02-30T00:00:00Z|" + id, "2024-01-01T23:59:60Z|" + id, "2024-01-01T00:00:00-24:00|" + id,
		"2024-01-01T00:00:00Z|", "|" + id, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z|" + id + "|x",
		"2024-01-01T00:00:00Z|{" + id + "}", "2024-01-01T00:00:00Z|" + strings.ToUpper(id), "2024-01-01T00:00:00Z|not-a-uuid",
		"infinity|" + id, "-infinity|" + id, "\x00|" + id, strings.Repeat("9", 10000)}
}

func FuzzProductCursor(f *testing.F) {
	s := startShop(f)
	browse := s.cursorFrom(f, "/api/v1/products?limit=1")
	search := s.cursorFrom(f, "/api/v1/products?limit=1&q="+url.QueryEscape("mug or teapot"))
	for _, c := range []struct{ q, cursor string }{
		{"", browse}, {"mug or teapot", search}, {"mug", search}, {"", search}, {"mug or teapot", browse},
		{"", `{"n":"","i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":"Ceramic mug","i":"00000000-0000-0000-0000-000000000000","s":"` + scope(browse) + `"}`},
		{"", `{"n":"` + strings.Repeat("ü", 480) + `","i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":"a\u0000","i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":"\ud800","i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":1,"i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":"x","i":"$PRODUCT","s":"` + scope(browse) + `","extra":1}`},
		{"", `{"n":"x","n":"y","i":"$PRODUCT","s":"` + scope(browse) + `"}`},
		{"", `{"n":"x","i":"{$PRODUCT}","s":"` + scope(browse) + `"}`},
		{"", `{"n":"x","i":null,"s":null}`}, {"", "null"}, {"", "{}"}, {"", "[]"},
		{"mug or teapot", `{"r":1e308,"i":"$PRODUCT","s":"` + scope(search) + `"}`},
		{"mug or teapot", `{"r":-1e-320,"i":"$PRODUCT","s":"` + scope(search) + `"}`},
		{"mug or teapot", `{"r":-0,"i":"$PRODUCT","s":"` + scope(search) + `"}`},
		{"mug or teapot", `{"r":1e400,"i":"$PRODUCT","s":"` + scope(search) + `"}`},
		{"mug or teapot", `{"r":"NaN","i":"$PRODUCT","s":"` + scope(search) + `"}`},
	} {
		f.Add(c.q, []byte(c.cursor), false)
	}
	for _, raw := range []string{"", "!", "====", "a", "AAAA", "eyJ9", strings.Repeat("A", 10000), "%00"} {
		f.Add("", []byte(raw), true)
	}
	f.Fuzz(func(t *testing.T, q string, cursor []byte, raw bool) {
		params := url.Values{"q": {q}, "limit": {"1"}, "cursor": {cursorParam(s.fill(cursor), raw)}}
		s.send(t, "GET", "/api/v1/products?"+params.Encode(), nil)
	})
}

// scope is the "s" of a product cursor, which binds it to its search.
func scope(cursor string) string {
	_, after, _ := strings.Cut(cursor, `"s":"`)
	s, _, _ := strings.Cut(after, `"`)
	return s
}

func FuzzOrderCursor(f *testing.F) {
	s := startShop(f)
	s.newOrder(f) // a second order: a page of one has a next_cursor
	s.CheckInvariants(f)
	real := s.cursorFrom(f, "/api/v1/orders?limit=1", s.asCustomer())
	for _, c := range timeCursorSeeds(real, "$ORDER") {
		f.Add([]byte(c), false, "")
	}
	f.Add([]byte(real), false, "confirmed")
	f.Add([]byte(real), false, "cancelled'; --")
	for _, raw := range []string{"", "!", "====", "AAAA", strings.Repeat("A", 10000), "%00"} {
		f.Add([]byte(raw), true, "")
	}
	f.Fuzz(func(t *testing.T, cursor []byte, raw bool, status string) {
		params := url.Values{"limit": {"1"}, "cursor": {cursorParam(s.fill(cursor), raw)}}
		if status != "" {
			params.Set("status", status)
		}
		s.send(t, "GET", "/api/v1/orders?"+params.Encode(), nil, s.asCustomer())
		s.send(t, "GET", "/api/v1/orders?"+params.Encode(), nil, s.asAdmin())
	})
}

func FuzzUserCursor(f *testing.F) {
	s := startShop(f)
	real := s.cursorFrom(f, "/api/v1/users?limit=1", s.asAdmin())
	for _, c := range timeCursorSeeds(real, "$ADMIN_ID") {
		f.Add([]byte(c), false, "1")
	}
	for _, limit := range []string{"", "0", "-1", "100", "101", "1e2", "9223372036854775808", " 1", "1.0"} {
		f.Add([]byte(real), false, limit)
	}
	for _, raw := range []string{"", "!", "====", "AAAA", strings.Repeat("A", 10000), "%00"} {
		f.Add([]byte(raw), true, "1")
	}
	f.Fuzz(func(t *testing.T, cursor []byte, raw bool, limit string) {
		params := url.Values{"limit": {limit}, "cursor": {cursorParam(s.fill(cursor), raw)}}
		s.send(t, "GET", "/api/v1/users?"+params.Encode(), nil, s.asAdmin())
	})
}
