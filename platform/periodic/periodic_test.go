package periodic

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
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
