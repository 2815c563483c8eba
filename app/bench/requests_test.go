package bench_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/testkit"
)

// What BenchmarkUsers and BenchmarkProducts share: pgbench select-only as
// the reference, a closed-loop maximum and an open loop at half of it per
// request, and one table of the results.

const (
	// clients is pgbench's -c and the closed-loop workers, so both sides
	// are offered the same concurrency.
	clients        = 8
	pgbenchThreads = 2
	pgbenchScale   = 10
	// openLoopInFlight bounds the open-loop workers: far above what half
	// the maximum rate needs, so the generator does not queue requests itself.
	openLoopInFlight = 256
)

// request sends request number i with c and reports nil when the answer
// was the expected one. It must read and close the response body.
type request func(ctx context.Context, c *http.Client, i int) error

// on is the request as a load's operation, sent with c.
func (r request) on(c *http.Client) benchkit.Op {
	return func(ctx context.Context, i int) error { return r(ctx, c, i) }
}

// phaseLength is MODSHOP_BENCH_PHASE, 15s by default.
func phaseLength(b *testing.B) time.Duration {
	raw := os.Getenv("MODSHOP_BENCH_PHASE")
	if raw == "" {
		return 15 * time.Second
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < time.Second || d > 2*time.Minute {
		b.Fatalf("MODSHOP_BENCH_PHASE=%q: want a duration from 1s to 2m", raw)
	}
	return d
}

// record appends a figure of issue 17's table to the run's results file
// (benchkit.Record: only when MODSHOP_BENCH_RESULTS is set, as make bench
// sets it).
func record(b *testing.B, key string, value float64) {
	if err := benchkit.Record(key, value); err != nil {
		b.Errorf("record %s: %v", key, err)
	}
}

// selectOnly is the reference of the request benchmarks: pgbench
// select-only on a scratch database of the same server, run before and
// after the shop is measured.
type selectOnly struct {
	pg    benchkit.Pgbench
	err   error // no pgbench: the run has no ratios
	phase time.Duration
	tps   []float64
}

// startSelectOnly finds pgbench, creates and fills its database and runs
// it once ("before"); without pgbench it says so and measures nothing.
func startSelectOnly(b *testing.B, phase time.Duration, rows *[]row) *selectOnly {
	s := &selectOnly{phase: phase}
	s.pg.Bin, s.err = benchkit.FindPgbench()
	if s.err != nil {
		msg := "SKIPPING pgbench (no ratios in this run): " + s.err.Error()
		fmt.Println(msg)
		b.Log(msg)
		return s
	}
	s.pg.DatabaseURL = testkit.NewDatabase(b) // dropped when the benchmark ends
	if err := s.pg.Init(b.Context(), pgbenchScale); err != nil {
		b.Fatal(err)
	}
	s.run(b, "before", rows)
	return s
}

// run measures pgbench select-only once and adds its row.
func (s *selectOnly) run(b *testing.B, label string, rows *[]row) {
	if s.err != nil {
		return
	}
	mark := benchkit.MarkCPU()
	v, err := s.pg.Run(b.Context(), benchkit.Load{Script: benchkit.SelectOnly, Clients: clients, Threads: pgbenchThreads, Duration: s.phase})
	if err != nil {
		b.Fatal(err)
	}
	s.tps = append(s.tps, v.TPS)
	*rows = append(*rows, row{name: "pgbench select-only, " + label,
		load: fmt.Sprintf("-S -c %d -j %d -T %s, scale %d", clients, pgbenchThreads, s.phase.Round(time.Second), pgbenchScale),
		rate: fmt.Sprintf("%.0f tps", v.TPS), cpu: mark.Since()})
}

// ref is the mean of the runs' tps, 0 without pgbench.
func (s *selectOnly) ref() float64 {
	ref := 0.0
	for _, v := range s.tps {
		ref += v / float64(len(s.tps))
	}
	return ref
}

// measured is one request's closed-loop maximum and its open loop at half.
type measured struct{ max, half benchkit.Result }

// measure finds the request's maximum rate (closed loop, clients workers,
// after warmup, for phase), then sends at half of it (open loop) for
// halfPhase, and adds both rows.
func measure(b *testing.B, name string, req request, warmup, phase, halfPhase time.Duration, rows *[]row) measured {
	var m measured
	client := benchkit.NewHTTPClient(clients)
	mark := benchkit.MarkCPU()
	m.max = benchkit.ClosedLoop(b.Context(), clients, warmup, phase, req.on(client))
	*rows = append(*rows, row{name: name + ", max", load: m.max.Mode, res: &m.max, cpu: mark.Since()})
	client.CloseIdleConnections()
	checkFailures(b, name+" max", m.max)
	if m.max.OK == 0 {
		return m
	}
	client = benchkit.NewHTTPClient(openLoopInFlight)
	mark = benchkit.MarkCPU()
	m.half = benchkit.OpenLoop(b.Context(), m.max.Rate()/2, halfPhase, openLoopInFlight, req.on(client))
	*rows = append(*rows, row{name: "  at half max", load: m.half.Mode, res: &m.half, open: true, cpu: mark.Since()})
	client.CloseIdleConnections()
	checkFailures(b, name+" at half max", m.half)
	return m
}

// reportMeasured reports a request's figures as the benchmark's metrics,
// named after prefix.
func reportMeasured(b *testing.B, prefix string, m measured, ref float64) {
	b.ReportMetric(m.max.Rate(), prefix+"_max_req/s")
	if ref > 0 {
		b.ReportMetric(m.max.Rate()/ref, prefix+"_max/pgbench_S")
	}
	if m.half.OK > 0 {
		b.ReportMetric(benchkit.Millis(m.half.Percentile(50)), prefix+"_half_p50_ms")
		b.ReportMetric(benchkit.Millis(m.half.Percentile(99)), prefix+"_half_p99_ms")
	}
}

// expect turns a response into nil when its status is want, reading and
// closing the body either way.
func expect(resp *http.Response, err error) func(want int) error {
	return func(want int) error {
		_, err := answer(resp, err, want)
		return err
	}
}

// answer reads and closes a response's body, and fails unless its status
// is want.
func answer(resp *http.Response, err error, want int) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return nil, fmt.Errorf("status %d, want %d: %.200s", resp.StatusCode, want, body)
	}
	return body, nil
}

func checkFailures(b *testing.B, phase string, r benchkit.Result) {
	b.Helper()
	if r.Failed > 0 {
		b.Errorf("%s: %d of %d requests failed; first: %v", phase, r.Failed, r.Failed+r.OK, r.FirstErr)
	}
}

type row struct {
	name, load, rate string
	res              *benchkit.Result
	open             bool
	cpu              benchkit.CPUUse
}

// printRequests prints the rows of a request benchmark and what they mean.
func printRequests(w io.Writer, ref float64, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "measurement\tload\trate\t÷ pgbench -S tps\tp50\tp99\tsent late (max)\tfailed\tCPU: shop+gen cores / machine\t")
	for _, r := range rows {
		rate, ratio, p50, p99, late, failed := r.rate, "", "", "", "", ""
		if r.res != nil {
			rate = fmt.Sprintf("%.1f req/s", r.res.Rate())
			if !r.open { // an open row is offered load, not a capacity: no ratio
				ratio = benchkit.Ratio(r.res.Rate(), ref, 4)
			}
			failed = strconv.Itoa(r.res.Failed)
			if r.open {
				p50, p99 = benchkit.FormatMs(r.res.Percentile(50)), benchkit.FormatMs(r.res.Percentile(99))
				late = benchkit.FormatMs(r.res.MaxSendLag)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.load, rate, ratio, p50, p99, late, failed, r.cpu)
	}
	if ref > 0 {
		fmt.Fprintf(tw, "pgbench select-only, reference (mean)\t\t%.0f tps\t1\t\t\t\t\t\t\n", ref)
	}
	tw.Flush()
	fmt.Fprintln(w, `
max rows: closed loop, `+strconv.Itoa(clients)+` workers sending back to back (as many as pgbench's clients), after a warm-up.
half-max rows: open loop at half the measured max; p50/p99 run from each request's intended send
time to its answer, so queueing is counted (no coordinated omission); "sent late" is how far behind
schedule the generator itself sent its latest request (CPU starvation), included in p50/p99.
Ratios: req/s ÷ reference tps.`)
}

// printHead prints a report's first lines: its title, the machine and the
// server.
func printHead(w io.Writer, title, server string) {
	fmt.Fprintf(w, "\n%s, %s\n", title, time.Now().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s; shop, load generator, PostgreSQL and pgbench share them\n", benchkit.Machine())
	s, _ := benchkit.DescribeServer(context.Background(), server)
	fmt.Fprintf(w, "PostgreSQL: %s at %s\n", s.Version, s.Host)
}
