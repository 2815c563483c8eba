package bus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
		{"a closed connection while running (the database away: retried)", false, connClosed, "level=DEBUG"},
		{"a batch a transient failure ended", false, fmt.Errorf("could not get args for acking the message: %w", errRetryLater), "level=DEBUG"},
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

// logBuffer collects what a logger writes, from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// While the bus closes, watermill-sql logs a failed rollback with the error
// that made it roll back in its fields: a rollback that failed because
// closing closed the connection does not hide a real failure behind it.
func TestLogAdapter_ARealErrorInTheFieldsStaysAnError(t *testing.T) {
	t.Parallel()
	connClosed := fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed)
	realErr := fmt.Errorf("could not get args for acking the message: %w", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table o_x"})
	tests := []struct {
		name   string
		fields watermill.LogFields
		want   string
	}{
		{"a real query error behind the closed connection", watermill.LogFields{"query_err": realErr}, "level=ERROR"},
		{"a real error in another field", watermill.LogFields{"query_err": context.Canceled, "cause": realErr}, "level=ERROR"},
		{"a cancelled query behind the closed connection", watermill.LogFields{"query_err": fmt.Errorf("could not query message: %w", context.Canceled)}, "level=DEBUG"},
		{"fields that are no errors", watermill.LogFields{"query_err": "x", "attempt": 2}, "level=DEBUG"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		closing := make(chan struct{})
		close(closing)
		log := newLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), closing)
		log.With(watermill.LogFields{"topic": "t"}).Error("could not rollback tx for querying message", connClosed, tt.fields)
		if got := buf.String(); !strings.Contains(got, tt.want) || !strings.Contains(got, "conn closed") {
			t.Errorf("%s: logged %q, want %s with the rollback's error", tt.name, got, tt.want)
		}
		if err, ok := tt.fields["query_err"].(error); ok && !strings.Contains(buf.String(), err.Error()) {
			t.Errorf("%s: logged %q without the query's error", tt.name, buf.String())
		}
	}
}

// A subscriber's query that fails while the bus closes is logged, unless
// the closing caused it.
func TestBackoff_AQueryErrorWhileClosingIsLoggedUnlessClosingCausedIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a real error", fmt.Errorf("could not get args for acking the message: %w", &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: "permission denied for table o_x"}), "level=ERROR"},
		{"a cancelled query", fmt.Errorf("could not begin tx for querying: %w", context.Canceled), "level=DEBUG"},
		{"a closed connection", fmt.Errorf("could not query message: %w", pgconn.ErrConnClosed), "level=DEBUG"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		closing := make(chan struct{})
		close(closing)
		log := newLogAdapter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), closing)
		b := &backoff{wake: make(chan struct{}, 1), closed: closing, safety: time.Second, retryAfter: time.Second}
		if wait := b.HandleError(log, false, tt.err); wait != 0 {
			t.Errorf("%s: waits %v while closing, want 0", tt.name, wait)
		}
		if got := buf.String(); !strings.Contains(got, tt.want) || !strings.Contains(got, tt.err.Error()) {
			t.Errorf("%s: logged %q, want %s with the error", tt.name, got, tt.want)
		}
	}
}
