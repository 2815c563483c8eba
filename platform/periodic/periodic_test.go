package periodic

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSweep_RunsUntilCancelledAndLogs: the sweep runs on every tick, logs
// what it changed and what failed, keeps going after a failure, and
// returns once its context ends.
func TestSweep_RunsUntilCancelledAndLogs(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan int, 100)
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Sweep(ctx, time.Millisecond, log, "tidy up", func(context.Context) (int, error) {
			n++
			calls <- n
			if n == 1 {
				return 0, errors.New("boom")
			}
			return 2, nil
		})
	}()
	for c := range calls {
		if c == 3 {
			break
		}
	}
	cancel()
	<-done
	logged := out.String()
	if !strings.Contains(logged, `msg="tidy up failed" err=boom`) || !strings.Contains(logged, `msg="tidy up" count=2`) {
		t.Fatalf("log:\n%s", logged)
	}
}

// TestSweep_LogsAnOutageOnceAndItsEnd: while the database is away the
// sweep fails at every tick; that is one WARN when it starts and one INFO
// when a sweep works again, and no ERROR.
func TestSweep_LogsAnOutageOnceAndItsEnd(t *testing.T) {
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan int, 100)
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Sweep(ctx, time.Millisecond, log, "tidy up", func(context.Context) (int, error) {
			n++
			calls <- n
			if n <= 5 {
				return 0, fmt.Errorf("tidy: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
			}
			return 0, nil
		})
	}()
	for c := range calls {
		if c == 7 {
			break
		}
	}
	cancel()
	<-done
	logged := out.String()
	if got := strings.Count(logged, "level=WARN"); got != 1 {
		t.Errorf("%d WARN lines, want 1:\n%s", got, logged)
	}
	if got := strings.Count(logged, "level=INFO"); got != 1 || !strings.Contains(logged, "available again") {
		t.Errorf("%d INFO lines, want 1 saying the database is back:\n%s", got, logged)
	}
	if strings.Contains(logged, "level=ERROR") {
		t.Errorf("an outage logged as errors:\n%s", logged)
	}
}
