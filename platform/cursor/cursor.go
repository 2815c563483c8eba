// Package cursor owns the keyset cursor of the shop's listings that page
// by creation time: after (created_at, id), given out as base64url (no
// padding) of "RFC3339Nano|uuid". The product catalog pages by name or
// rank within a search and has a cursor of its own.
package cursor

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrMalformed is returned for a cursor the shop did not give out. Callers
// answer it with apperr.Malformed.
var ErrMalformed = errors.New("malformed cursor")

// Keyset is the position after which the next page starts.
type Keyset struct {
	CreatedAt time.Time
	ID        string
}

// Encode returns k as it is given out: safe in a query string unescaped.
func Encode(k Keyset) string {
	return base64.RawURLEncoding.EncodeToString([]byte(k.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + k.ID))
}

// Decode returns the position s holds, or ErrMalformed.
func Decode(s string) (Keyset, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Keyset{}, ErrMalformed
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return Keyset{}, ErrMalformed
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Keyset{}, ErrMalformed
	}
	// uuid.Parse also takes "urn:uuid:…" and "{…}", which PostgreSQL does
	// not; only the canonical form the shop gives out is a cursor.
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Keyset{}, ErrMalformed
	}
	return Keyset{CreatedAt: t, ID: id}, nil
}
