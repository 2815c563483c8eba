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
	if _, err := uuid.Parse(id); err != nil {
		return userCursor{}, err
	}
	return userCursor{CreatedAt: t, ID: id}, nil
}
