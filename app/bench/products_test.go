package bench_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/benchkit"
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

	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	var rows []row

	// 1. pgbench select-only on a scratch database of the same server.
	pgbench := startSelectOnly(b, phase, &rows)

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
	get := func(urls []string) request {
		return func(ctx context.Context, c *http.Client, i int) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[i%len(urls)], nil)
			if err != nil {
				return err
			}
			return expect(c.Do(req))(http.StatusOK)
		}
	}

	getM := measure(b, "GET /api/v1/products/{id}", get(getURLs), warmup, phase, halfPhase, &rows)
	searchM := measure(b, "GET /api/v1/products?q=…&limit=20", get(searchURLs), warmup, phase, halfPhase, &rows)

	// The HTTP stack's own floor on this machine, beside pgbench's: GET
	// /healthz goes through the same server, router and middleware (but
	// tracing) and the same load generator, answers JSON and asks no
	// database. GET /products/{id} ÷ it says what the read itself costs,
	// which pgbench's C client, cheaper on a quiet machine, does not.
	floorClient := benchkit.NewHTTPClient(clients)
	mark := benchkit.MarkCPU()
	floor := benchkit.ClosedLoop(b.Context(), clients, warmup, phase, get([]string{shop.URL + "/healthz"}).on(floorClient))
	rows = append(rows, row{name: "GET /healthz (the HTTP floor), max", load: floor.Mode, res: &floor, cpu: mark.Since()})
	floorClient.CloseIdleConnections()
	checkFailures(b, "GET /healthz max", floor)

	// pgbench again, to show how much the machine drifted during the run.
	pgbench.run(b, "after", &rows)

	// 3. Report.
	ref := pgbench.ref()
	printProductsReport(os.Stdout, server, defaults.DBMaxConns, len(ids), hits, ref, rows)
	if floor.Rate() > 0 {
		fmt.Printf("GET /api/v1/products/{id} ÷ GET /healthz (the HTTP floor): %.0f / %.0f = %.2f\n", getM.max.Rate(), floor.Rate(), getM.max.Rate()/floor.Rate())
	}

	b.ReportMetric(0, "ns/op") // one run of ~1.5 minutes: meaningless per op
	if ref > 0 {
		b.ReportMetric(ref, "pgbench_S_tps")
	}
	reportMeasured(b, "product_get", getM, ref)
	reportMeasured(b, "product_search", searchM, ref)
	b.ReportMetric(floor.Rate(), "http_floor_req/s")

	// The figures of issue 17's table (make bench; benchkit.Record).
	if ref > 0 {
		record(b, "products.select_only_tps", ref)
	}
	record(b, "products.get_by_id_per_s", getM.max.Rate())
	record(b, "products.http_floor_per_s", floor.Rate())
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
	printHead(w, "modshop products benchmark", server)
	fmt.Fprintf(w, "shop: in process (apptest), loopback HTTP, %d connections per module pool, demo catalog (%d products), anonymous requests\n", poolSize, products)
	qs := make([]string, len(searchQueries))
	for i, q := range searchQueries {
		qs[i] = fmt.Sprintf("%q (%d hits)", q, hits[i])
	}
	fmt.Fprintf(w, "get rotates over all %d product ids; search rotates over %s\n\n", products, strings.Join(qs, ", "))
	printRequests(w, ref, rows)
}
