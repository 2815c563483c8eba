package app

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRecentProbe_ManyCallersOneRun(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	release := make(chan struct{})
	p := newRecentProbe(func(context.Context) int { runs.Add(1); <-release; return 7 })
	p.ttl = time.Hour
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if v, err := p.result(context.Background()); v != 7 || err != nil {
				t.Errorf("result %d, %v", v, err)
			}
		})
	}
	close(release)
	wg.Wait()
	if n := runs.Load(); n != 1 {
		t.Fatalf("50 callers ran the check %d times, want once", n)
	}
}

func TestRecentProbe_AStaleResultIsCheckedAgain(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	p := newRecentProbe(func(context.Context) int32 { return runs.Add(1) })
	p.ttl = 0
	a, _ := p.result(context.Background())
	b, _ := p.result(context.Background())
	if a != 1 || b != 2 {
		t.Fatalf("results %d, %d: a stale result was reused", a, b)
	}
}

func TestRecentProbe_ACallerThatGoesAwayLeavesTheResultForOthers(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	release := make(chan struct{})
	p := newRecentProbe(func(ctx context.Context) error {
		runs.Add(1)
		<-release
		return ctx.Err()
	})
	p.ttl = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller whose context ended: %v", err)
	}
	close(release)
	res, err := p.result(context.Background())
	if err != nil || res != nil || runs.Load() != 1 {
		t.Fatalf("the next caller: %v, %v after %d runs; want the first run's nil", res, err, runs.Load())
	}
}
