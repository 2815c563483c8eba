package accounts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/modshop/modshop/platform/httpx"
)

func TestSizeHashSlots_AQuarterOfMemoryAtMostTwoPerCPU(t *testing.T) {
	t.Parallel()
	const MiB = 1 << 20
	tests := []struct {
		name   string
		memory uint64
		procs  int
		want   int
	}{
		{"plenty of memory: the CPUs decide", 24 << 30, 2, 4},
		{"plenty of memory, many CPUs", 64 << 30, 32, 64},
		{"a 256 MiB container", 256 * MiB, 8, 3},
		{"a 1 GiB container", 1 << 30, 64, 13},
		{"less than one hash's share", 64 * MiB, 4, 1},
		{"memory unknown", 0, 3, 6},
		{"GOMAXPROCS 0 is still one CPU", 24 << 30, 0, 2},
	}
	for _, tt := range tests {
		if got := sizeHashSlots(tt.memory, tt.procs); got != tt.want {
			t.Errorf("%s: sizeHashSlots(%d MiB, %d) = %d, want %d", tt.name, tt.memory/MiB, tt.procs, got, tt.want)
		}
	}
}

func TestDefaultHashSlots_SaysHowItSizedTheBound(t *testing.T) {
	t.Parallel()
	slots, why := DefaultHashSlots()
	if slots < 1 || why == "" {
		t.Fatalf("DefaultHashSlots() = %d, %q", slots, why)
	}
}

// heldGate is a gate whose hashes count themselves and wait for release.
type heldGate struct {
	*hashGate
	running, most atomic.Int32
	entered       chan struct{}
	release       chan struct{}
	free          func() // closes release, once
}

func newHeldGate(slots int, wait time.Duration) *heldGate {
	g := &heldGate{hashGate: newHashGate(HashConfig{Slots: slots, Wait: wait}), entered: make(chan struct{}, 100), release: make(chan struct{})}
	g.free = sync.OnceFunc(func() { close(g.release) })
	g.hold = func() {
		n := g.running.Add(1)
		for {
			m := g.most.Load()
			if n <= m || g.most.CompareAndSwap(m, n) {
				break
			}
		}
		g.entered <- struct{}{}
		<-g.release
		g.running.Add(-1)
	}
	return g
}

func TestHashGate_RunsAtMostItsSlotsAndRefusesTheRestWithRetryAfter(t *testing.T) {
	t.Parallel()
	g := newHeldGate(2, 20*time.Millisecond)
	const n = 10
	results := make(chan error, n)
	for range n {
		go func() { results <- g.run(context.Background(), func() {}) }()
	}
	defer g.free()
	<-g.entered
	<-g.entered
	// Both slots are held until release: every other call must come back
	// refused after its short wait, none may hang or slip in.
	for range n - 2 {
		select {
		case err := <-results:
			if !errors.Is(err, g.busy) {
				t.Fatalf("a call beyond the slots returned %v, want the 503 busy problem", err)
			}
		case <-g.entered:
			t.Fatal("a third hash started while two were running")
		case <-time.After(time.Minute):
			t.Fatal("a call beyond the slots hangs instead of being refused")
		}
	}
	if p, _ := httpx.ProblemFor(g.busy); p == nil || p.Status != 503 || p.RetryAfter < 1 || p.Type != "https://modshop.dev/problems/busy" {
		t.Fatalf("busy problem: %+v, want status 503 with a Retry-After", p)
	}
	g.free()
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("a call that had a slot: %v", err)
		}
	}
	if m := g.most.Load(); m != 2 {
		t.Fatalf("at most %d hashes ran at once, want 2", m)
	}
	if got := testutil.ToFloat64(g.metrics.refusals); got != n-2 {
		t.Errorf("refusals metric = %v, want %d", got, n-2)
	}
	if got := testutil.ToFloat64(g.metrics.inFlight); got != 0 {
		t.Errorf("in-flight metric = %v after every hash ended", got)
	}
}

func TestHashGate_AWaitingCallGetsTheFreedSlot(t *testing.T) {
	t.Parallel()
	g := newHeldGate(1, time.Minute)
	defer g.free()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = g.run(context.Background(), func() {}) })
	<-g.entered
	wg.Go(func() { errs[1] = g.run(context.Background(), func() {}) })
	// Wait until the second call is queued for the slot, then free it.
	for deadline := time.Now().Add(time.Minute); testutil.ToFloat64(g.metrics.waits) < 1; time.Sleep(time.Millisecond) {
		select {
		case <-g.entered:
			t.Fatal("a second call ran beside the first with one slot")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the second call never waited for the slot")
		}
	}
	g.free()
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("errors %v: the waiting call should have had the slot when it came free", errs)
	}
	if m := g.most.Load(); m != 1 {
		t.Fatalf("%d ran at once with one slot", m)
	}
}

func TestHashGate_ACancelledRequestStopsWaiting(t *testing.T) {
	t.Parallel()
	g := newHeldGate(1, time.Hour)
	defer g.free()
	go g.run(context.Background(), func() {})
	<-g.entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.run(ctx, func() {}) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !g.notRun(err) {
			t.Fatalf("cancelled while waiting: %v, want context.Canceled, known as a hash that never ran", err)
		}
	case <-g.entered:
		t.Fatal("a second call ran beside the first with one slot")
	case <-time.After(time.Minute):
		t.Fatal("a cancelled call goes on waiting")
	}
}
