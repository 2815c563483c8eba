package bench_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/bench"
	"github.com/modshop/modshop/platform/testkit"
)

// searchQueries are what a shopper of the demo catalog types; the search
// load rotates over them. Each must find something (checked before the load).
var searchQueries = []string{"ceramic", "tea", "notebook", "coffee beans"}

// BenchmarkProducts measures GET /api/v1/products/{id} and a full-text
// search (GET /api/v1/products?q=...&limit=20) in requests/s, their ratio to
// pgbench select-only tps on the same PostgreSQL server, and their
// latency at half the maximum rate, in one run. It does its work once
// whatever b.N is: run it with -benchtime 1x.
func BenchmarkProducts(b *testing.B) {
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

	// 2. The shop, in process, on a loopback listener, with the production
	// pool size and the demo catalog loaded at Open.
	defaults := app.DefaultConfig()
	shop := apptest.Start(b, func(c *app.Config) {
		c.DBMaxConns = defaults.DBMaxConns
		c.SeedDemo = true
	})
	ids := productIDs(b, shop)
	hits := checkSearches(b, shop, searchQueries)
	// One product answer checked against the OpenAPI document (the listing
	// and the searches above were too).
	if resp := shop.API.Do("GET", "/api/v1/products/"+ids[0], nil); resp.Status != http.StatusOK {
		b.Fatalf("GET /api/v1/products/%s: %d %s", ids[0], resp.Status, resp.Body)
	}
	if b.Failed() {
		b.FailNow() // an answer off the document: measuring it would mislead
	}

	getURLs := make([]string, len(ids))
	for i, id := range ids {
		getURLs[i] = shop.URL + "/api/v1/products/" + id
	}
	searchURLs := make([]string, len(searchQueries))
	for i, q := range searchQueries {
		searchURLs[i] = shop.URL + "/api/v1/products?" + url.Values{"q": {q}, "limit": {"20"}}.Encode()
	}
	get := func(urls []string) bench.Request {
		return func(ctx context.Context, c *http.Client, i int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
			if err != nil {
				return err
			}
			return expect(c.Do(req))(http.StatusOK)
		}
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
	getM := measure("GET /api/v1/products/{id}", get(getURLs))
	searchM := measure("GET /api/v1/products?q=…&limit=20", get(searchURLs))

	// pgbench again, to show how much the machine drifted during the run.
	runPgbench("after")

	// 3. Report.
	ref := 0.0
	for _, v := range tps {
		ref += v / float64(len(tps))
	}
	printProductsReport(os.Stdout, server, defaults.DBMaxConns, len(ids), hits, ref, rows)

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
	report("product_get", getM)
	report("product_search", searchM)
}

// productIDs walks the public listing (each page checked against the
// OpenAPI document) and returns every product id of the catalog.
func productIDs(b *testing.B, shop *apptest.Shop) []string {
	b.Helper()
	var ids []string
	path := "/api/v1/products?limit=100"
	for range 100 {
		resp := shop.API.Do("GET", path, nil)
		if resp.Status != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		resp.Decode(b, &page)
		for _, p := range page.Items {
			ids = append(ids, p.ID)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/api/v1/products?" + url.Values{"limit": {"100"}, "cursor": {*page.NextCursor}}.Encode()
	}
	if len(ids) == 0 {
		b.Fatal("the demo catalog is empty: SeedDemo loaded nothing")
	}
	return ids
}

// checkSearches sends each query once through the checking client and
// returns how many products its first page holds; a query that finds
// nothing would measure an empty answer, so it stops the benchmark.
func checkSearches(b *testing.B, shop *apptest.Shop, queries []string) []int {
	b.Helper()
	hits := make([]int, len(queries))
	for i, q := range queries {
		path := "/api/v1/products?" + url.Values{"q": {q}, "limit": {"20"}}.Encode()
		resp := shop.API.Do("GET", path, nil)
		if resp.Status != http.StatusOK {
			b.Fatalf("GET %s: %d %s", path, resp.Status, resp.Body)
		}
		var page struct {
			Items []struct{} `json:"items"`
		}
		resp.Decode(b, &page)
		if len(page.Items) == 0 {
			b.Fatalf("search %q finds nothing in the demo catalog", q)
		}
		hits[i] = len(page.Items)
	}
	return hits
}

func printProductsReport(w io.Writer, server string, poolSize, products int, hits []int, ref float64, rows []row) {
	fmt.Fprintf(w, "\nmodshop products benchmark, %s\n", time.Now().Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %d CPUs, GOMAXPROCS %d, %s %s/%s; shop, load generator, PostgreSQL and pgbench share them\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(w, "PostgreSQL: %s at %s\n", serverVersion(server), hostOf(server))
	fmt.Fprintf(w, "shop: in process (apptest), loopback HTTP, %d connections per module pool, demo catalog (%d products), anonymous requests\n", poolSize, products)
	qs := make([]string, len(searchQueries))
	for i, q := range searchQueries {
		qs[i] = fmt.Sprintf("%q (%d hits)", q, hits[i])
	}
	fmt.Fprintf(w, "get rotates over all %d product ids; search rotates over %s\n\n", products, strings.Join(qs, ", "))
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
