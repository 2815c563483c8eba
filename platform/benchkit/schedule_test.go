package benchkit_test

import (
	"testing"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

func TestNewSchedule(t *testing.T) {
	start := time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		rate     float64
		d        time.Duration
		n        int
		interval time.Duration
	}{
		{rate: 200, d: 500 * time.Millisecond, n: 100, interval: 5 * time.Millisecond},
		{rate: 1000, d: 5 * time.Second, n: 5000, interval: time.Millisecond},
		{rate: 0.5, d: 10 * time.Second, n: 5, interval: 2 * time.Second},
		{rate: 3, d: 999 * time.Millisecond, n: 2, interval: 333333333}, // only whole operations fall due
		{rate: 0, d: time.Second, n: 0, interval: 0},
	} {
		s := benchkit.NewSchedule(start, c.rate, c.d)
		if s.N != c.n || s.Interval != c.interval {
			t.Errorf("%v/s for %v: %d operations every %v, want %d every %v", c.rate, c.d, s.N, s.Interval, c.n, c.interval)
		}
	}
}

func TestSchedule_DueTimesAreEvenlySpacedFromStart(t *testing.T) {
	start := time.Date(2026, 12, 3, 20, 0, 0, 0, time.UTC)
	s := benchkit.NewSchedule(start, 4, time.Second)
	want := []time.Duration{0, 250 * time.Millisecond, 500 * time.Millisecond, 750 * time.Millisecond}
	if s.N != len(want) {
		t.Fatalf("%d operations, want %d", s.N, len(want))
	}
	for i, w := range want {
		if got := s.Due(i).Sub(start); got != w {
			t.Errorf("operation %d due at start+%v, want start+%v", i, got, w)
		}
	}
}
