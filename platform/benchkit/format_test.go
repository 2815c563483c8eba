package benchkit_test

import (
	"testing"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

func TestFormatMs(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0.00 ms",
		1234 * time.Microsecond:  "1.23 ms",
		18245 * time.Microsecond: "18.25 ms",
		2 * time.Second:          "2000.00 ms",
	} {
		if got := benchkit.FormatMs(d); got != want {
			t.Errorf("FormatMs(%v) = %q, want %q", d, got, want)
		}
	}
	if got := benchkit.Millis(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Millis(1.5ms) = %v, want 1.5", got)
	}
}

func TestFormatShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		420 * time.Microsecond:   "0.42 ms",
		9990 * time.Microsecond:  "9.99 ms",
		10 * time.Millisecond:    "10 ms",
		18400 * time.Microsecond: "18 ms",
		999 * time.Millisecond:   "999 ms",
		1200 * time.Millisecond:  "1.20 s",
	} {
		if got := benchkit.FormatShort(d); got != want {
			t.Errorf("FormatShort(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestRatio(t *testing.T) {
	for _, c := range []struct {
		v, ref   float64
		decimals int
		want     string
	}{
		{v: 212.3, ref: 3330, decimals: 3, want: "0.064"},
		{v: 1024, ref: 3165, decimals: 2, want: "0.32"},
		{v: 5, ref: 0, decimals: 2, want: "n/a"}, // pgbench did not run
	} {
		if got := benchkit.Ratio(c.v, c.ref, c.decimals); got != c.want {
			t.Errorf("Ratio(%v, %v, %d) = %q, want %q", c.v, c.ref, c.decimals, got, c.want)
		}
	}
}

func TestCPUUseString(t *testing.T) {
	for _, c := range []struct {
		u    benchkit.CPUUse
		want string
	}{
		{benchkit.CPUUse{Process: 0.854, Machine: 0.47}, "0.85 / 47% of "},
		{benchkit.CPUUse{Machine: -1}, "? / ?"},
	} {
		got := c.u.String()
		if len(got) < len(c.want) || got[:len(c.want)] != c.want {
			t.Errorf("%+v.String() = %q, want it to start %q", c.u, got, c.want)
		}
	}
}
