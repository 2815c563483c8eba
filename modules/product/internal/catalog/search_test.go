package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/modshop/modshop/platform/apperr"
)

// TestSearchFailure_TextThePostgresParserRefusesIs422: under the bounds on
// the search text, a text PostgreSQL still refuses is the client's to fix
// (422 naming q); any other failure stays a server error.
func TestSearchFailure_TextThePostgresParserRefusesIs422(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	ctx := context.Background()
	w.product(t, "MUG-1", 1)

	flood := strings.Repeat("-", 40) + "mug" // past checkQuery's bound: only here can it reach the database
	_, err := listProducts(ctx, w.db, listQuery{Q: flood, Limit: 1})
	if err == nil {
		t.Fatalf("PostgreSQL took %d NOTs in a row; this test needs a text it refuses", 40)
	}
	cases := []struct {
		name, q string
		err     error
		want422 bool
	}{
		{"the parser's own refusal", flood, err, true},
		{"a limit the text ran into", "mug", &pgconn.PgError{Code: "54001", Message: "stack depth limit exceeded"}, true},
		{"an internal error with a text that parses", "mug", fmt.Errorf("list products: %w", &pgconn.PgError{Code: "XX000", Message: "could not read block"}), false},
		{"no database error at all", flood, context.Canceled, false},
	}
	for _, c := range cases {
		got := searchFailure(ctx, w.db, c.q, c.err)
		var e *apperr.Error // answered 422 (httpx's table)
		is422 := errors.As(got, &e) && e.Kind == apperr.ErrInvalid && len(e.Fields) == 1 && e.Fields[0].Field == "q"
		if is422 != c.want422 {
			t.Errorf("%s: %v, want a 422 naming q: %v", c.name, got, c.want422)
		}
		if !c.want422 && got != c.err {
			t.Errorf("%s: %v, want the error itself", c.name, got)
		}
	}
}

func TestCheckQuery_BoundsWhatTheParserCanTake(t *testing.T) {
	for q, ok := range map[string]bool{
		"ceramic -vase":                      true,
		"t-shirt -red \"french press\" or x": true,
		strings.Repeat("-", 20) + "x":        true,
		strings.Repeat("-", 21) + "x":        false,
		strings.Repeat("a-", 21):             false, // hyphens count: the bound does not mimic the parser
		strings.Repeat("é", 200):             true,
		strings.Repeat("é", 201):             false,
		"a\x00b":                             false,
		"\xff":                               false,
	} {
		if got := checkQuery(q) == ""; got != ok {
			t.Errorf("checkQuery(%q) accepts: %v, want %v", q, got, ok)
		}
	}
}
