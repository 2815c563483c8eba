package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/bench"
	"github.com/modshop/modshop/platform/testkit"
)

const (
	benchUsers    = 50 // accounts logged in to and sessions used for /me
	benchPassword = "correct horse battery staple"
	// clients is pgbench's -c and the closed-loop workers, so both sides
	// are offered the same concurrency.
	clients        = 8
	pgbenchThreads = 2
	pgbenchScale   = 10
	// openLoopInFlight bounds the open-loop workers: far above what half
	// the maximum rate needs, so the generator does not queue requests itself.
	openLoopInFlight = 256
)

// BenchmarkUsers measures log-in and GET /api/v1/users/me requests/s and
// their ratio to pgbench select-only tps on the same PostgreSQL server, in
// one run. It does its work once whatever b.N is: run it with -benchtime 1x.
func BenchmarkUsers(b *testing.B) {
	if testing.Short() {
		b.Skip("load benchmark: skipped with -short")
	}
	phase := phaseLength(b)
	warmup := min(time.Second, phase/5)
	halfPhase := phase * 2 / 3
	ctx := b.Context()

	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	var rows []row

	// 1. pgbench select-only on a scratch database of the same server.
	pgbench, pgErr := bench.FindPgbench()
	var pgDB string
	var tps []float64
	runPgbench := func(label string) {
		if pgErr != nil {
			return
		}
		mark := bench.MarkCPU()
		v, err := bench.PgbenchSelectOnly(ctx, pgbench, pgDB, clients, pgbenchThreads, phase)
		if err != nil {
			b.Fatal(err)
		}
		tps = append(tps, v)
		rows = append(rows, row{name: "pgbench select-only, " + label,
			load: fmt.Sprintf("-S -c %d -j %d -T %s, scale %d", clients, pgbenchThreads, phase.Round(time.Second), pgbenchScale),
			rate: fmt.Sprintf("%.0f tps", v), cpu: mark.Since()})
	}
	if pgErr != nil {
		msg := "SKIPPING pgbench (no ratios in this run): " + pgErr.Error()
		fmt.Println(msg)
		b.Log(msg)
	} else {
		pgDB = testkit.NewDatabase(b) // dropped when the benchmark ends
		if err := bench.PgbenchInit(ctx, pgbench, pgDB, pgbenchScale); err != nil {
			b.Fatal(err)
		}
		runPgbench("before")
	}

	// 2. The shop, in process, on a loopback listener, with throttles out
	// of the way (all load comes from 127.0.0.1) and the production pool size.
	defaults := app.DefaultConfig()
	shop := apptest.Start(b, func(c *app.Config) {
		c.LoginPerClient = 1 << 30
		c.LoginPerAccount = 1 << 30
		c.DBMaxConns = defaults.DBMaxConns
	})
	names, tokens := makeUsers(b, shop)
	if resp := shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(tokens[0])); resp.Status != http.StatusOK {
		b.Fatalf("GET /api/v1/users/me: %d %s", resp.Status, resp.Body)
	}
	bodies := make([][]byte, len(names))
	for i, n := range names {
		bodies[i], _ = json.Marshal(map[string]string{"login": n, "password": benchPassword})
	}
	login := func(ctx context.Context, c *http.Client, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, shop.URL+"/api/v1/sessions", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		return expect(c.Do(req))(http.StatusCreated)
	}
	me := func(ctx context.Context, c *http.Client, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, shop.URL+"/api/v1/users/me", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
		return expect(c.Do(req))(http.StatusOK)
	}

	type measured struct{ max, half bench.Result }
	measure := func(name string, req bench.Request) measured {
		var m measured
		client := bench.NewClient(clients)
		mark := bench.MarkCPU()
		m.max = bench.ClosedLoop(ctx, client, clients, warmup, phase, req)
		rows = append(rows, row{name: name + ", max", load: m.max.Mode, res: &m.max, cpu: mark.Since()})
		client.CloseIdleConnections()
		checkFailures(b, name+" max", m.max)
		if m.max.OK == 0 {
			return m
		}
		client = bench.NewClient(openLoopInFlight)
		mark = bench.MarkCPU()
		m.half = bench.OpenLoop(ctx, client, m.max.Rate()/2, halfPhase, openLoopInFlight, req)
		rows = append(rows, row{name: "  at half max", load: m.half.Mode, res: &m.half, open: true, cpu: mark.Since()})
		client.CloseIdleConnections()
		checkFailures(b, name+" at half max", m.half)
		return m
	}
	loginM := measure("POST /api/v1/sessions (log-in)", login)
	// A user keeps at most 20 sessions: the log-ins above ended the ones
	// makeUsers opened, so /me gets sessions of its own.
	for i, n := range names {
		tokens[i] = shop.Login(b, n, benchPassword)
	}
	meM := measure("GET /api/v1/users/me", me)

	// pgbench again, to show how much the machine drifted during the run.
	runPgbench("after")

	// 3. Report.
	ref := 0.0
	for _, v := range tps {
		ref += v / float64(len(tps))
	}
	printReport(os.Stdout, server, defaults.DBMaxConns, ref, rows)

	b.ReportMetric(0, "ns/op") // one run of ~1.5 minutes: meaningless per op
	if ref > 0 {
		b.ReportMetric(ref, "pgbench_S_tps")
	}
	report := func(prefix string, m measured) {
		b.ReportMetric(m.max.Rate(), prefix+"_max_req/s")
		if ref > 0 {
			b.ReportMetric(m.max.Rate()/ref, prefix+"_max/pgbench_S")
		}
		if m.half.OK > 0 {
			b.ReportMetric(ms(m.half.Percentile(50)), prefix+"_half_p50_ms")
			b.ReportMetric(ms(m.half.Percentile(99)), prefix+"_half_p99_ms")
		}
	}
	report("login", loginM)
	report("me", meM)
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

// makeUsers creates the accounts (two at a time: argon2id is CPU bound)
// and logs each in once through the API, which checks the answers
// against the OpenAPI document.
func makeUsers(b *testing.B, shop *apptest.Shop) (names, tokens []string) {
	b.Helper()
	names = make([]string, benchUsers)
	for i := range names {
		names[i] = apptest.Unique("bench")
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < len(names); i += 2 {
				_, errs[i] = shop.CreateUser(b.Context(), names[i], names[i]+"@example.com", benchPassword, false)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("create user %s: %v", names[i], err)
		}
	}
	tokens = make([]string, len(names))
	for i, n := range names {
		tokens[i] = shop.Login(b, n, benchPassword)
	}
	return names, tokens
}

// expect turns a response into nil when its status is want, reading and
// closing the body either way.
func expect(resp *http.Response, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, rerr := io.ReadAll(resp.Body)
		if rerr != nil {
			return rerr
		}
		if resp.StatusCode != want {
			return fmt.Errorf("status %d, want %d: %.200s", resp.StatusCode, want, body)
		}
		return nil
	}
}

func checkFailures(b *testing.B, phase string, r bench.Result) {
	b.Helper()
	if r.Failed > 0 {
		b.Errorf("%s: %d of %d requests failed; first: %v", phase, r.Failed, r.Failed+r.OK, r.FirstErr)
	}
}

type row struct {
	name, load, rate string
	res              *bench.Result
	open             bool
	cpu              bench.CPUUse
}

func printReport(w io.Writer, server string, poolSize int, ref float64, rows []row) {
	fmt.Fprintf(w, "\nmodshop users benchmark, %s\n", time.Now().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs, GOMAXPROCS %d, %s %s/%s; shop, load generator, PostgreSQL and pgbench share them\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "PostgreSQL: %s at %s\n", serverVersion(server), hostOf(server))
	fmt.Fprintf(w, "shop: in process (apptest), loopback HTTP, %d connections per module pool, log-in throttles raised, argon2id as shipped\n\n", poolSize)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "measurement\tload\trate\t÷ pgbench -S tps\tp50\tp99\tsent late (max)\tfailed\tCPU: shop+gen cores / machine\t")
	for _, r := range rows {
		rate, ratio, p50, p99, late, failed := r.rate, "", "", "", "", ""
		if r.res != nil {
			rate = fmt.Sprintf("%.1f req/s", r.res.Rate())
			switch {
			case r.open: // offered load, not a capacity: no ratio
			case ref > 0:
				ratio = fmt.Sprintf("%.4f", r.res.Rate()/ref)
			default:
				ratio = "n/a"
			}
			failed = strconv.Itoa(r.res.Failed)
			if r.open {
				p50, p99 = fmtMs(r.res.Percentile(50)), fmtMs(r.res.Percentile(99))
				late = fmtMs(r.res.MaxSendLag)
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

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMs(d time.Duration) string { return strconv.FormatFloat(ms(d), 'f', 2, 64) + " ms" }

func serverVersion(server string) string {
	db, err := sql.Open("pgx", server)
	if err != nil {
		return "?"
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var v string
	if err := db.QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "?"
	}
	return v
}

// hostOf is the server URL's host and port, without user or password.
func hostOf(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return "?"
	}
	return u.Host
}
