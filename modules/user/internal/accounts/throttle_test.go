package accounts

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/httpx"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestThrottle_AllowsTheBurstThenMakesTheKeyWait(t *testing.T) {
	t.Parallel()
	// 3 attempts per 30 s: one attempt comes back every 10 s.
	th := newThrottle(3, 30*time.Second)
	for i := range 3 {
		if w := th.wait("k", t0); w != 0 {
			t.Fatalf("attempt %d: wait = %v, want 0 within the burst", i+1, w)
		}
		th.spend("k", t0)
	}
	if w := th.wait("k", t0); w != 10*time.Second {
		t.Fatalf("after the burst: wait = %v, want 10s", w)
	}
}

func TestThrottle_WaitShrinksAsTimePassesAndIsNeverZeroWhileBlocked(t *testing.T) {
	t.Parallel()
	th := newThrottle(3, 30*time.Second)
	for range 3 {
		th.spend("k", t0)
	}
	tests := []struct {
		after time.Duration
		want  time.Duration
	}{
		{4 * time.Second, 6 * time.Second},
		{9*time.Second + 500*time.Millisecond, time.Second}, // rounded up, not down to 0
		{9*time.Second + 999*time.Millisecond, time.Second},
		{10 * time.Second, 0},
		{time.Hour, 0},
	}
	for _, tt := range tests {
		if got := th.wait("k", t0.Add(tt.after)); got != tt.want {
			t.Errorf("wait %v after the burst = %v, want %v", tt.after, got, tt.want)
		}
	}
}

func TestThrottle_RetryAfterIsAWholePositiveNumberOfSeconds(t *testing.T) {
	t.Parallel()
	th := newThrottle(5, 15*time.Minute)
	for range 5 {
		th.spend("login:alice", t0)
	}
	for _, after := range []time.Duration{0, time.Second, 179 * time.Second, 179*time.Second + 999*time.Millisecond} {
		w := th.wait("login:alice", t0.Add(after))
		if w <= 0 || w%time.Second != 0 {
			t.Fatalf("wait %v after the burst = %v, want a positive whole number of seconds", after, w)
		}
		p := httpx.TooManyRequests("slow down", int(w.Seconds()))
		if p.Status != 429 || p.RetryAfter < 1 || p.RetryAfter != int(w.Seconds()) {
			t.Fatalf("problem for wait %v = status %d, Retry-After %d", w, p.Status, p.RetryAfter)
		}
	}
}

func TestThrottle_KeysAreCountedApart(t *testing.T) {
	t.Parallel()
	th := newThrottle(1, time.Minute)
	th.spend("client:192.0.2.1", t0)
	if w := th.wait("client:192.0.2.1", t0); w == 0 {
		t.Fatal("the client that used its attempt is not held back")
	}
	if w := th.wait("client:192.0.2.2", t0); w != 0 {
		t.Fatalf("another client must wait %v because of the first", w)
	}
}

func TestThrottle_ForgetLetsTheKeyStraightIn(t *testing.T) {
	t.Parallel()
	th := newThrottle(2, time.Hour)
	th.spend("login:alice", t0)
	th.spend("login:alice", t0)
	th.spend("login:bob", t0)
	th.spend("login:bob", t0)
	th.forget("login:alice") // alice logged in
	if w := th.wait("login:alice", t0); w != 0 {
		t.Errorf("after forget, alice waits %v", w)
	}
	if w := th.wait("login:bob", t0); w == 0 {
		t.Error("forgetting alice also let bob in")
	}
}

func TestThrottle_ZeroBurstStillAllowsOneAttempt(t *testing.T) {
	t.Parallel()
	th := newThrottle(0, time.Minute)
	if w := th.wait("k", t0); w != 0 {
		t.Fatalf("first attempt waits %v", w)
	}
	th.spend("k", t0)
	if w := th.wait("k", t0); w != time.Minute {
		t.Fatalf("second attempt waits %v, want 1m", w)
	}
}

func TestThrottle_SweepDropsOnlyRefilledBuckets(t *testing.T) {
	t.Parallel()
	th := newThrottle(2, time.Minute) // one attempt back every 30 s
	th.spend("old", t0)
	th.spend("recent", t0.Add(50*time.Second))
	th.mu.Lock()
	th.sweep(t0.Add(60 * time.Second))
	_, oldKept := th.buckets["old"]
	_, recentKept := th.buckets["recent"]
	th.mu.Unlock()
	if oldKept {
		t.Error("a bucket that has refilled was kept")
	}
	if !recentKept {
		t.Error("a bucket still counting attempts was dropped: its key would get a fresh burst")
	}
	if w := th.wait("recent", t0.Add(50*time.Second)); w != 0 {
		t.Fatalf("recent: wait %v, want 0 (one attempt of two used)", w)
	}
}

func TestThrottle_SpendSweepsAsNewKeysArrive(t *testing.T) {
	t.Parallel()
	th := newThrottle(1, time.Second)
	for i := range 2048 {
		th.spend(fmt.Sprintf("client:%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	th.mu.Lock()
	n := len(th.buckets)
	th.mu.Unlock()
	if n >= 2048 {
		t.Fatalf("%d buckets kept for 2048 keys whose attempts long refilled: memory grows without bound", n)
	}
}

func TestThrottle_IsSafeForConcurrentLogIns(t *testing.T) {
	t.Parallel()
	th := newThrottle(5, time.Minute)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			key := fmt.Sprintf("k%d", i%3)
			th.wait(key, t0)
			th.spend(key, t0)
			if i%7 == 0 {
				th.forget(key)
			}
		})
	}
	wg.Wait()
	for range 5 {
		th.spend("k9", t0)
	}
	if w := th.wait("k9", t0); w == 0 {
		t.Fatal("throttle stopped counting after concurrent use")
	}
}
