package catalog

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// pageCursor is where the next page of a listing starts: after the last
// row's sort key and id, (name, id) when browsing, (tier, name, id) when
// searching (store_relevance.go), (price, id) or (created_at, id) when sorted so. It is bound
// to the query and the order it came from, so a cursor cannot be replayed
// against another search.
type pageCursor struct {
	Name  string `json:"n,omitempty"`
	Tier  int    `json:"k,omitempty"`
	Price string `json:"p,omitempty"`
	At    string `json:"t,omitempty"`
	ID    string `json:"i"`
	Scope string `json:"s"`
}

// The orders of a listing, as GET /products takes them in sort.
const (
	SortRelevance = "relevance" // most relevant first: a search's default
	SortName      = "name"      // browsing's default
	SortPrice     = "price"     // cheapest first
	SortPriceDesc = "-price"    // dearest first
	SortNewest    = "newest"    // last created first
)

// sortFor resolves the sort a listing asked for; ok is false for an
// unknown one. Relevance without a search text ranks nothing: it is the
// browsing order, by name.
func sortFor(sort, q string) (string, bool) {
	switch {
	case (sort == "" || sort == SortRelevance) && q != "":
		return SortRelevance, true
	case sort == "" || sort == SortRelevance:
		return SortName, true
	}
	_, ok := sortKeys[sort]
	return sort, ok
}

// scopeOf names a listing for its cursors. A listing in its default order
// keeps the scope it had before sorts existed, so cursors given out then
// still work.
func scopeOf(q, category, sort string) string {
	key := q + "\x00" + category
	if def, _ := sortFor("", q); sort != def {
		key += "\x00" + sort
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:6])
}

func encodeCursor(c pageCursor) string {
	raw, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(raw)
}

var errBadCursor = errors.New("bad cursor")

func decodeCursor(s, scope string) (pageCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) > 512 {
		return pageCursor{}, errBadCursor
	}
	var c pageCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.Scope != scope {
		return pageCursor{}, errBadCursor
	}
	if !utf8.ValidString(c.Name) || strings.ContainsRune(c.Name, 0) || len(c.Name) > 4*maxNameLen {
		return pageCursor{}, errBadCursor
	}
	if c.Tier != 0 && c.Tier != tierName && c.Tier != tierDescription {
		return pageCursor{}, errBadCursor
	}
	if _, ok := normalisePrice(c.Price); c.Price != "" && !ok {
		return pageCursor{}, errBadCursor
	}
	if _, err := time.Parse(time.RFC3339Nano, c.At); c.At != "" && err != nil {
		return pageCursor{}, errBadCursor
	}
	if u, err := uuid.Parse(c.ID); err != nil || u.String() != c.ID {
		return pageCursor{}, errBadCursor
	}
	return c, nil
}
