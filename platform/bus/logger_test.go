package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgconn"
)

// The bus's own shutdown is not an error; everything else Watermill calls
// an error stays one, also while the bus closes.
func TestLogAdapter_ShutdownIsNotAnErrorRealErrorsStillAre(t *testing.T) {
	t.Parallel()
	connClosed := fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed)
	realErr := &pgconn.PgError{Severity: "ERROR", Code: "42P01", Message: "relation bus.messages_x does not exist"}
	tests := []struct {
		name    string
		closing bool
		err     error
		want    string
	}{
		{"rollback on a connection the cancel closed, while closing", true, connClosed, "level=DEBUG"},
		{"a handler gives its message back, while closing", true, fmt.Errorf("handler: %w", errClosing), "level=DEBUG"},
		{"a cancelled query, while closing", true, fmt.Errorf("could not query message: %w", context.Canceled), "level=DEBUG"},
		{"a real error while closing", true, realErr, "level=ERROR"},
		{"something else while closing", true, errors.New("could not unmarshal message"), "level=ERROR"},
		{"a closed connection while running", false, connClosed, "level=ERROR"},
		{"a cancelled query while running", false, context.Canceled, "level=ERROR"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		closing := make(chan struct{})
		if tt.closing {
			close(closing)
		}
		log := newLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), closing)
		// Subscribers log through a logger With their topic.
		log.With(watermill.LogFields{"topic": "t"}).Error("could not rollback tx for querying message", tt.err, watermill.LogFields{"query_err": "x"})
		got := buf.String()
		if !strings.Contains(got, tt.want) || !strings.Contains(got, tt.err.Error()) || !strings.Contains(got, "topic=t") {
			t.Errorf("%s: logged %q, want %s with the error and the fields", tt.name, got, tt.want)
		}
	}
}

// Watermill's Info narrates every subscription: it is our Debug.
func TestLogAdapter_InfoIsDebug(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), make(chan struct{}))
	log.Info("Subscribing to topic", nil)
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("logged %q, want DEBUG", buf.String())
	}
}
