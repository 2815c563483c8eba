package benchkit

import (
	"fmt"
	"strconv"
	"time"
)

// Millis is d in milliseconds, for metrics and tables.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// FormatMs is d in milliseconds with two decimals: "12.34 ms".
func FormatMs(d time.Duration) string { return strconv.FormatFloat(Millis(d), 'f', 2, 64) + " ms" }

// FormatShort is d with as many digits as its size deserves: "0.42 ms",
// "18 ms", "1.20 s".
func FormatShort(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", Millis(d))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", Millis(d))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// Ratio is v ÷ ref with decimals digits, or "n/a" without a reference
// (ref <= 0: pgbench did not run).
func Ratio(v, ref float64, decimals int) string {
	if ref <= 0 {
		return "n/a"
	}
	return strconv.FormatFloat(v/ref, 'f', decimals, 64)
}
