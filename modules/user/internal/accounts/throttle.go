package accounts

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ThrottleConfig bounds log-in attempts. Each limit is a bucket of Burst
// attempts refilled evenly over Window.
type ThrottleConfig struct {
	// PerAccount counts failed log-ins against one account.
	PerAccountBurst int
	// PerClient counts every log-in from one client address.
	PerClientBurst int
	Window         time.Duration
}

// DefaultThrottle: 5 failures per account and 30 attempts per client
// address in 15 minutes.
var DefaultThrottle = ThrottleConfig{PerAccountBurst: 5, PerClientBurst: 30, Window: 15 * time.Minute}

// throttle keeps a token bucket per key in memory. It protects one process;
// several processes each keep their own (noted in the README).
type throttle struct {
	mu      sync.Mutex
	burst   int
	every   rate.Limit
	buckets map[string]*rate.Limiter
	inserts int
}

func newThrottle(burst int, window time.Duration) *throttle {
	if burst < 1 {
		burst = 1
	}
	return &throttle{burst: burst, every: rate.Limit(float64(burst) / window.Seconds()), buckets: map[string]*rate.Limiter{}}
}

// wait reports how long key must wait before its next attempt (0: go ahead).
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.buckets[key]
	if !ok {
		return 0
	}
	tokens := l.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1-tokens)/float64(t.every))) * time.Second
}

// take spends one attempt from key's bucket when one is left, in one step,
// so concurrent attempts cannot all pass a check before any of them spends.
// Otherwise it spends nothing and reports how long to wait.
func (t *throttle) take(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.buckets[key]
	if !ok {
		l = rate.NewLimiter(t.every, t.burst)
		t.buckets[key] = l
		t.inserts++
		if t.inserts%1024 == 0 {
			t.sweep(now)
		}
	}
	if l.AllowN(now, 1) {
		return 0
	}
	tokens := l.TokensAt(now)
	return time.Duration(math.Ceil((1-tokens)/float64(t.every))) * time.Second
}

// spend takes one attempt from key's bucket.
func (t *throttle) spend(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.buckets[key]
	if !ok {
		l = rate.NewLimiter(t.every, t.burst)
		t.buckets[key] = l
		t.inserts++
		if t.inserts%1024 == 0 {
			t.sweep(now)
		}
	}
	l.AllowN(now, 1)
}

// forget clears key, as after a successful log-in.
func (t *throttle) forget(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.buckets, key)
}

// sweep drops buckets that have refilled: they hold no information.
func (t *throttle) sweep(now time.Time) {
	for k, l := range t.buckets {
		if l.TokensAt(now) >= float64(t.burst) {
			delete(t.buckets, k)
		}
	}
}
