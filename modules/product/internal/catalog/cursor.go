package catalog

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// pageCursor is where the next page of a listing starts: after (name, id)
// when browsing, after (rank, id) when searching. It is bound to the query
// it came from, so a cursor cannot be replayed against another search.
type pageCursor struct {
	Name  string  `json:"n,omitempty"`
	Rank  float64 `json:"r,omitempty"`
	ID    string  `json:"i"`
	Scope string  `json:"s"`
}

func scopeOf(q, category string) string {
	sum := sha256.Sum256([]byte(q + "\x00" + category))
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
	if u, err := uuid.Parse(c.ID); err != nil || u.String() != c.ID {
		return pageCursor{}, errBadCursor
	}
	return c, nil
}
