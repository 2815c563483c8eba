package benchkit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Op does operation number i of a load (numbers run from 0 and are never
// repeated within one load) and reports nil when it did what was expected.
type Op func(ctx context.Context, i int) error

// Result is what one load phase measured.
type Result struct {
	Mode     string        // how the load was applied, for the report
	Window   time.Duration // the measured span
	OK       int           // expected outcomes within the window
	Failed   int           // other outcomes within the window
	FirstErr error         // the first failure, if any
	// Latencies of the OK operations. Open loop: from each operation's
	// intended start to its end. Closed loop: from its start to its end.
	Latencies []time.Duration
	// MaxSendLag (open loop) is how late the driver started its most
	// delayed operation: large values mean its workers were all busy, and
	// that delay is inside Latencies.
	MaxSendLag time.Duration
}

// Rate is the completed operations per second.
func (r Result) Rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// Percentile is the p-th percentile (0 < p <= 100) of the latencies,
// nearest-rank, or 0 without samples.
func (r Result) Percentile(p float64) time.Duration { return Percentile(r.Latencies, p) }

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

// ClosedLoop finds a maximum rate: workers run operations back to back
// for warmup+d, and only those that end in the d after the warm-up count.
// Each worker finishes its last operation after the window but starts no
// new one, so the phase ends at most one operation late.
func ClosedLoop(ctx context.Context, workers int, warmup, d time.Duration, op Op) Result {
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
				err := op(ctx, i)
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

// Schedule is when an open loop at a fixed rate starts its operations:
// operation i is due at Start + i × Interval, and there are N of them.
type Schedule struct {
	Start    time.Time
	Interval time.Duration
	N        int
}

// NewSchedule is rate operations per second for d from start: the
// operations that fall due within d, at least one when rate > 0.
func NewSchedule(start time.Time, rate float64, d time.Duration) Schedule {
	if rate <= 0 {
		return Schedule{Start: start}
	}
	return Schedule{Start: start, Interval: time.Duration(float64(time.Second) / rate), N: int(rate * d.Seconds())}
}

// Due is when operation i should start.
func (s Schedule) Due(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Interval) }

// OpenLoop runs rate operations per second for d whatever their outcome:
// operation i is due at start + i/rate, and its latency runs from that due
// time, so time an operation spends waiting for a free worker (because the
// system under test is slow) is counted. maxInFlight bounds the workers.
func OpenLoop(ctx context.Context, rate float64, d time.Duration, maxInFlight int, op Op) Result {
	s := NewSchedule(time.Now().Add(10*time.Millisecond), rate, d)
	var c collector
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(maxInFlight, max(s.N, 1)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= s.N {
					return
				}
				due := s.Due(i)
				if wait := time.Until(due); wait > 0 {
					time.Sleep(wait)
				}
				c.lag(time.Since(due))
				err := op(ctx, i)
				c.add(time.Since(due), err)
			}
		})
	}
	wg.Wait()
	return Result{
		Mode:   fmt.Sprintf("open loop, %.1f req/s, %s", rate, d.Round(time.Second)),
		Window: time.Since(s.Start), OK: c.ok, Failed: c.failed, FirstErr: c.firstErr,
		Latencies: c.latencies, MaxSendLag: c.maxLag,
	}
}
