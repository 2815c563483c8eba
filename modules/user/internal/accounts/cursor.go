package accounts

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

// userCursor is the position after which the next page of users starts.
type userCursor struct {
	CreatedAt time.Time
	ID        string
}

func encodeUserCursor(c userCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func decodeUserCursor(s string) (userCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return userCursor{}, err
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return userCursor{}, errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return userCursor{}, err
	}
	// uuid.Parse also takes "urn:uuid:…" and "{…}", which PostgreSQL does
	// not; only the canonical form this API gives out is a cursor.
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return userCursor{}, errors.New("malformed cursor")
	}
	return userCursor{CreatedAt: t, ID: id}, nil
}
