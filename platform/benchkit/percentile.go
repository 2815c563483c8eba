package benchkit

import (
	"slices"
	"time"
)

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of d, or 0
// without samples. d need not be sorted and is not changed.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return percentileOfSorted(s, p)
}

// percentileOfSorted is the nearest-rank p-th percentile of sorted, non-empty s.
func percentileOfSorted(s []time.Duration, p float64) time.Duration {
	// The rank is ceil(n × p/100), with a margin for the rounding of p/100.
	rank := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// Summary is the usual percentiles of a set of latencies, and how many of
// the operations measured have none (did not finish, were not handled).
type Summary struct {
	N, Missing         int
	P50, P90, P99, Max time.Duration
}

// Summarize sorts a copy of d once and reads its percentiles.
func Summarize(d []time.Duration, missing int) Summary {
	s := Summary{N: len(d), Missing: missing}
	if len(d) == 0 {
		return s
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	s.P50, s.P90, s.P99 = percentileOfSorted(sorted, 50), percentileOfSorted(sorted, 90), percentileOfSorted(sorted, 99)
	s.Max = sorted[len(sorted)-1]
	return s
}
