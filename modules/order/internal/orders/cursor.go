package orders

import (
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
)

type orderCursor struct {
	CreatedAt time.Time
	ID        string
}

func encodeOrderCursor(c orderCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(c.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + c.ID))
}

func decodeOrderCursor(s string) (orderCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return orderCursor{}, err
	}
	ts, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return orderCursor{}, errors.New("malformed cursor")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return orderCursor{}, err
	}
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return orderCursor{}, errors.New("malformed cursor")
	}
	return orderCursor{CreatedAt: t, ID: id}, nil
}
