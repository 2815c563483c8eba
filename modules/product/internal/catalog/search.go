package catalog

import (
	"context"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/db"
)

// maxQueryMinus bounds the "-" in a search text. PostgreSQL's web-search
// parser keeps pending operators on a stack 32 deep: at most OR and AND
// below a run of NOTs, and every "-" in operand position is a NOT, so a run
// of 31 of them fails the whole query ("tsquery stack too small", an
// internal error). Counting every "-", hyphens inside words included, keeps
// the run far below that without mimicking the parser; real searches use a
// handful.
const maxQueryMinus = 20

// checkQuery says what is wrong with a search text, or "".
func checkQuery(q string) string {
	switch {
	case !utf8.ValidString(q) || strings.ContainsRune(q, 0):
		return "must be valid UTF-8 text"
	case utf8.RuneCountInString(q) > maxQueryLen:
		return "must be at most 200 characters"
	case strings.Count(q, "-") > maxQueryMinus:
		return `may hold at most 20 "-" (each one excludes the word after it)`
	}
	return ""
}

var errQueryTooComplex = apperr.InvalidField("q", "is more than the search can take: use fewer words and operators")

// searchFailure tells a search that PostgreSQL refused because of its text
// (a 422) from any other failure (returned as it is). The bounds of
// checkQuery keep the known limits out of reach; this is the net under them.
func searchFailure(ctx context.Context, gdb *gorm.DB, q string, err error) error {
	state := db.SQLState(err)
	switch {
	case strings.HasPrefix(state, "54"): // program_limit_exceeded, statement_too_complex: only the text varies
		return errQueryTooComplex
	case strings.HasPrefix(state, "22"), strings.HasPrefix(state, "42"), state == "XX000":
		// Data, syntax or internal errors may come from the parser (its
		// stack overflow is an internal error) or from anywhere else:
		// parse the text alone to tell.
		if db.SQLState(parseSearch(ctx, gdb, q)) != "" {
			return errQueryTooComplex
		}
	}
	return err
}
