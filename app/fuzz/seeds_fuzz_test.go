package fuzz_test

import (
	"strings"
	"testing"
)

// anyBodySeeds are inputs every JSON body target starts from: no JSON, the
// wrong JSON, JSON at the edges of what a decoder takes, and bodies at and
// beyond the size limit (1 MiB by default).
func anyBodySeeds() []string {
	return []string{
		"", " ", "null", "{}", "[]", "[{}]", `"text"`, "0", "-1", "1e400", "true",
		"{", `{"a":`, `{"a" 1}`, "{}{}", "{} x", `{"a":1,}`, "{'a':1}", "/* c */ {}",
		"\xef\xbb\xbf{}",             // a byte order mark
		"\xff\xfe{\x00}\x00",         // UTF-16
		`{"":1}`, `{"__proto__":{}}`, // odd keys, unknown either way
		`{"a":"` + "\xff\xfe" + `"}`, // bytes that are not UTF-8 inside a string
		`{"a":"\ud800"}`,             // a lone surrogate
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000),                 // nesting deeper than the decoder takes
		`{"a":` + strings.Repeat(`{"a":`, 500) + "1" + strings.Repeat("}", 501), // nested objects
		`{"a":"` + strings.Repeat("x", 1<<20) + `"}`,                            // over the body limit
	}
}

// addBodies seeds a target whose input is one body.
func addBodies(f *testing.F, bodies ...string) {
	for _, b := range append(anyBodySeeds(), bodies...) {
		f.Add([]byte(b))
	}
}
