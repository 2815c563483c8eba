package benchkit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

// A server that answers one request at a time in 10 ms can do 100/s.
// Offered 200/s by one worker for 0.5 s, the answers fall further and
// further behind their due times: an open-loop generator must report that
// (latencies far above 10 ms), where a closed-loop one would not.
func TestOpenLoopCountsQueueing(t *testing.T) {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		time.Sleep(10 * time.Millisecond)
		mu.Unlock()
	}))
	defer srv.Close()
	client := benchkit.NewHTTPClient(1)
	defer client.CloseIdleConnections()
	get := func(ctx context.Context, i int) error {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(r)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d, want 200", resp.StatusCode)
		}
		return nil
	}

	open := benchkit.OpenLoop(t.Context(), 200, 500*time.Millisecond, 1, get)
	if open.OK != 100 || open.Failed != 0 {
		t.Fatalf("open loop: %d ok, %d failed (first %v), want 100 ok", open.OK, open.Failed, open.FirstErr)
	}
	if p99 := open.Percentile(99); p99 < 300*time.Millisecond {
		t.Errorf("open loop p99 = %v, want the queueing delay (about 0.5 s) counted", p99)
	}
	if open.MaxSendLag < 300*time.Millisecond {
		t.Errorf("open loop max send lag = %v, want the generator's lateness shown", open.MaxSendLag)
	}

	closed := benchkit.ClosedLoop(t.Context(), 1, 100*time.Millisecond, 500*time.Millisecond, get)
	if r := closed.Rate(); r < 60 || r > 110 {
		t.Errorf("closed loop rate = %.1f/s, want about 100/s", r)
	}
	if p99 := closed.Percentile(99); p99 > 100*time.Millisecond {
		t.Errorf("closed loop p99 = %v, want about 10 ms (service time)", p99)
	}
}

// Every operation of an open loop runs once, whatever its outcome, and a
// failure is counted and kept rather than hidden.
func TestOpenLoop_RunsEveryOperationOnceAndCountsFailures(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	res := benchkit.OpenLoop(t.Context(), 1000, 50*time.Millisecond, 4, func(ctx context.Context, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		if i%10 == 3 {
			return fmt.Errorf("operation %d failed", i)
		}
		return nil
	})
	if len(seen) != 50 {
		t.Fatalf("%d distinct operations ran, want 50", len(seen))
	}
	for i, n := range seen {
		if i < 0 || i >= 50 || n != 1 {
			t.Errorf("operation %d ran %d times, want once (numbers 0 to 49)", i, n)
		}
	}
	if res.OK != 45 || res.Failed != 5 || len(res.Latencies) != 45 {
		t.Errorf("ok %d, failed %d, %d latencies; want 45, 5, 45", res.OK, res.Failed, len(res.Latencies))
	}
	if res.FirstErr == nil {
		t.Error("no first error kept")
	}
}
