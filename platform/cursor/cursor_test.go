package cursor

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestKeyset_RoundTrips(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	tests := []Keyset{
		{CreatedAt: time.Date(2026, 11, 27, 4, 14, 31, 123456000, time.UTC), ID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
		{CreatedAt: time.Date(2026, 11, 27, 9, 44, 31, 1, zone), ID: "00000000-0000-0000-0000-000000000000"},
		{CreatedAt: time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), ID: "ffffffff-ffff-4fff-bfff-ffffffffffff"},
	}
	for _, want := range tests {
		s := Encode(want)
		if strings.ContainsAny(s, "+/=&?# ") {
			t.Errorf("cursor %q needs escaping in a query string", s)
		}
		got, err := Decode(s)
		if err != nil {
			t.Fatalf("decode(encode(%v)) failed: %v", want, err)
		}
		if !got.CreatedAt.Equal(want.CreatedAt) || got.ID != want.ID {
			t.Errorf("decode(encode(%v)) = %v: the next page would start elsewhere", want, got)
		}
	}
}

func TestDecode_RefusesForgedCursors(t *testing.T) {
	t.Parallel()
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	const id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	tests := map[string]string{
		"empty":                enc(""),
		"not base64":           "not a cursor!",
		"padded base64":        base64.URLEncoding.EncodeToString([]byte("2026-01-01T00:00:00Z|" + id + "x")),
		"no separator":         enc("2026-01-01T00:00:00Z" + id),
		"not a time":           enc("yesterday|" + id),
		"a date without time":  enc("2026-01-01|" + id),
		"not a uuid":           enc("2026-01-01T00:00:00Z|1 OR 1=1"),
		"no id":                enc("2026-01-01T00:00:00Z|"),
		"id with a second bar": enc("2026-01-01T00:00:00Z|" + id + "|x"),
		// uuid.Parse takes these forms, PostgreSQL does not (a 500 before).
		"urn uuid":       enc("2026-01-01T00:00:00Z|urn:uuid:" + id),
		"braced uuid":    enc("2026-01-01T00:00:00Z|{" + id + "}"),
		"undashed uuid":  enc("2026-01-01T00:00:00Z|" + strings.ReplaceAll(id, "-", "")),
		"upper-case uid": enc("2026-01-01T00:00:00Z|" + strings.ToUpper(id)),
	}
	for name, cursor := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if c, err := Decode(cursor); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%q) = %v, %v; want ErrMalformed", cursor, c, err)
			}
		})
	}
}
