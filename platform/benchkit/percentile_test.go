package benchkit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// oneToHundred is 1 ms to 100 ms, shuffled: percentiles must not depend
// on the order of the samples.
func oneToHundred() []time.Duration {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, ms((i*37)%100+1))
	}
	return d
}

func TestPercentile(t *testing.T) {
	d := oneToHundred()
	before := slices.Clone(d)
	for p, want := range map[float64]time.Duration{50: ms(50), 90: ms(90), 99: ms(99), 100: ms(100), 1: ms(1), 0.5: ms(1)} {
		if got := benchkit.Percentile(d, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if !slices.Equal(d, before) {
		t.Error("Percentile reordered its argument")
	}
	if got := benchkit.Percentile(nil, 50); got != 0 {
		t.Errorf("no samples: p50 = %v, want 0", got)
	}
	// Nearest rank: of 3 samples the 50th percentile is the 2nd, the 99th the 3rd.
	if got := benchkit.Percentile([]time.Duration{ms(30), ms(10), ms(20)}, 50); got != ms(20) {
		t.Errorf("p50 of 10, 20, 30 ms = %v, want 20ms", got)
	}
	if got := benchkit.Percentile([]time.Duration{ms(30), ms(10), ms(20)}, 99); got != ms(30) {
		t.Errorf("p99 of 10, 20, 30 ms = %v, want 30ms", got)
	}
}

func TestResultPercentile(t *testing.T) {
	r := benchkit.Result{Latencies: oneToHundred()}
	if got := r.Percentile(99); got != ms(99) {
		t.Errorf("p99 = %v, want 99ms", got)
	}
	if got := (benchkit.Result{}).Percentile(50); got != 0 {
		t.Errorf("no samples: p50 = %v, want 0", got)
	}
}

func TestSummarize(t *testing.T) {
	d := oneToHundred()
	before := slices.Clone(d)
	got := benchkit.Summarize(d, 3)
	want := benchkit.Summary{N: 100, Missing: 3, P50: ms(50), P90: ms(90), P99: ms(99), Max: ms(100)}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if !slices.Equal(d, before) {
		t.Error("Summarize reordered its argument")
	}
	if got := benchkit.Summarize(nil, 7); got != (benchkit.Summary{Missing: 7}) {
		t.Errorf("no samples: %+v, want only the 7 missing", got)
	}
}

func TestResultRate(t *testing.T) {
	if got := (benchkit.Result{OK: 300, Window: 2 * time.Second}).Rate(); got != 150 {
		t.Errorf("300 in 2 s = %v/s, want 150", got)
	}
	if got := (benchkit.Result{OK: 300}).Rate(); got != 0 {
		t.Errorf("no window: %v/s, want 0", got)
	}
}
