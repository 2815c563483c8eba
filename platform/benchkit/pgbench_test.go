package benchkit_test

import (
	"slices"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

// The end of pgbench 15's report.
const pgbenchOutput = `transaction type: <builtin: TPC-B (sort of)>
scaling factor: 8
query mode: simple
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 15 s
number of transactions actually processed: 49950
number of failed transactions: 0 (0.000%)
latency average = 2.402 ms
initial connection time = 14.313 ms
tps = 3330.412345 (without initial connection time)
`

func TestParsePgbench(t *testing.T) {
	got, err := benchkit.ParsePgbench([]byte(pgbenchOutput))
	if err != nil {
		t.Fatal(err)
	}
	if got.TPS != 3330.412345 || got.LatencyMs != 2.402 {
		t.Errorf("parsed %+v, want 3330.412345 tps, 2.402 ms", got)
	}
	if _, err := benchkit.ParsePgbench([]byte("pgbench: error: connection refused\n")); err == nil {
		t.Error("output without a tps line parsed without an error")
	}
}

// The runs the benchmarks make, as pgbench's command lines: BenchmarkBus's
// TPC-B with 8 clients and with 1 (no vacuum), and the select-only reference.
func TestLoadArgs(t *testing.T) {
	for _, c := range []struct {
		load benchkit.Load
		want []string
	}{
		{benchkit.Load{Script: benchkit.TPCB, Clients: 8, Threads: 2, Duration: 15 * time.Second},
			[]string{"-c", "8", "-j", "2", "-T", "15"}},
		{benchkit.Load{Script: benchkit.TPCB, Clients: 1, Duration: 5 * time.Second, NoVacuum: true},
			[]string{"-n", "-c", "1", "-j", "1", "-T", "5"}},
		{benchkit.Load{Script: benchkit.SelectOnly, Clients: 8, Threads: 2, Duration: 1400 * time.Millisecond},
			[]string{"-n", "-S", "-c", "8", "-j", "2", "-T", "1"}},
		{benchkit.Load{Script: benchkit.SelectOnly, Clients: 8, Threads: 2, Duration: 100 * time.Millisecond},
			[]string{"-n", "-S", "-c", "8", "-j", "2", "-T", "1"}}, // at least a second
	} {
		if got := c.load.Args(); !slices.Equal(got, c.want) {
			t.Errorf("%+v: pgbench %v, want %v", c.load, got, c.want)
		}
	}
}
