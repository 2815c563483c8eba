package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Request sends request number i with client and reports nil when the
// answer was the expected one. It must read and close the response body.
type Request func(ctx context.Context, client *http.Client, i int) error

// Result is what one load phase measured.
type Result struct {
	Mode     string        // how the load was applied, for the report
	Window   time.Duration // the measured span
	OK       int           // expected answers within the window
	Failed   int           // other answers and transport errors within the window
	FirstErr error         // the first failure, if any
	// Latencies of the OK requests. Open loop: from each request's intended
	// send time to its answer. Closed loop: from send to answer.
	Latencies []time.Duration
	// MaxSendLag (open loop) is how late the generator sent its most
	// delayed request: large values mean its workers were all busy, and
	// that delay is inside Latencies.
	MaxSendLag time.Duration
}

// Rate is the completed requests per second.
func (r Result) Rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// Percentile returns the p-th percentile (0 < p <= 100) of the latencies,
// nearest-rank, or 0 without samples.
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.Latencies)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// NewClient is an HTTP client for up to conns concurrent connections to
// one loopback server: keep-alive, no proxy, no compression.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}

type collector struct {
	mu        sync.Mutex
	ok        int
	failed    int
	firstErr  error
	latencies []time.Duration
	maxLag    time.Duration
}

func (c *collector) add(lat time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed++
		if c.firstErr == nil {
			c.firstErr = err
		}
		return
	}
	c.ok++
	c.latencies = append(c.latencies, lat)
}

func (c *collector) lag(d time.Duration) {
	c.mu.Lock()
	c.maxLag = max(c.maxLag, d)
	c.mu.Unlock()
}

// ClosedLoop finds a maximum rate: workers send back to back for
// warmup+d, and only answers that arrive in the d after the warm-up count.
// Each worker finishes its last request after the window but starts no
// new one, so the phase ends at most one request late.
func ClosedLoop(ctx context.Context, client *http.Client, workers int, warmup, d time.Duration, req Request) Result {
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+d)
	var c collector
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(until) {
				i := int(next.Add(1) - 1)
				sent := time.Now()
				err := req(ctx, client, i)
				done := time.Now()
				if done.Before(from) || done.After(until) {
					continue // warm-up, or after the window
				}
				c.add(done.Sub(sent), err)
			}
		})
	}
	wg.Wait()
	return Result{
		Mode:   fmt.Sprintf("closed loop, %d workers, %s", workers, d.Round(time.Second)),
		Window: d, OK: c.ok, Failed: c.failed, FirstErr: c.firstErr, Latencies: c.latencies,
	}
}

// OpenLoop sends rate requests per second for d whatever the answers do:
// request i is due at start + i/rate, and its latency runs from that due
// time, so time a request spends waiting for a free worker (because the
// server is slow) is counted. maxInFlight bounds the workers.
func OpenLoop(ctx context.Context, client *http.Client, rate float64, d time.Duration, maxInFlight int, req Request) Result {
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(10 * time.Millisecond)
	var c collector
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(maxInFlight, max(n, 1)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				c.lag(time.Since(due))
				err := req(ctx, client, i)
				c.add(time.Since(due), err)
			}
		})
	}
	wg.Wait()
	return Result{
		Mode:   fmt.Sprintf("open loop, %.1f req/s, %s", rate, d.Round(time.Second)),
		Window: time.Since(start), OK: c.ok, Failed: c.failed, FirstErr: c.firstErr,
		Latencies: c.latencies, MaxSendLag: c.maxLag,
	}
}
