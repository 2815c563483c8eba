package bench_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app/bench"
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
	req := func(ctx context.Context, c *http.Client, i int) error {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		return expect(c.Do(r))(http.StatusOK)
	}
	client := bench.NewClient(1)
	defer client.CloseIdleConnections()

	open := bench.OpenLoop(t.Context(), client, 200, 500*time.Millisecond, 1, req)
	if open.OK != 100 || open.Failed != 0 {
		t.Fatalf("open loop: %d ok, %d failed (first %v), want 100 ok", open.OK, open.Failed, open.FirstErr)
	}
	if p99 := open.Percentile(99); p99 < 300*time.Millisecond {
		t.Errorf("open loop p99 = %v, want the queueing delay (about 0.5 s) counted", p99)
	}
	if open.MaxSendLag < 300*time.Millisecond {
		t.Errorf("open loop max send lag = %v, want the generator's lateness shown", open.MaxSendLag)
	}

	closed := bench.ClosedLoop(t.Context(), client, 1, 100*time.Millisecond, 500*time.Millisecond, req)
	if r := closed.Rate(); r < 60 || r > 110 {
		t.Errorf("closed loop rate = %.1f/s, want about 100/s", r)
	}
	if p99 := closed.Percentile(99); p99 > 100*time.Millisecond {
		t.Errorf("closed loop p99 = %v, want about 10 ms (service time)", p99)
	}
}

func TestPercentile(t *testing.T) {
	r := bench.Result{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 1: time.Millisecond} {
		if got := r.Percentile(p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if got := (bench.Result{}).Percentile(50); got != 0 {
		t.Errorf("no samples: p50 = %v, want 0", got)
	}
}
