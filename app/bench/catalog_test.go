package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/testkit"
)

// The catalog at scale: a million products generated in SQL, searched and
// browsed over HTTP one request at a time.

const (
	catalogProducts = 1_000_000
	// catalogGenerator names the generator below: a kept database made by
	// another version of it is made again.
	catalogGenerator = 3
	// catalogDatabase is the database the generated catalog is kept in
	// between runs (generating it takes minutes; a run that finds it with
	// its marker reuses it). MODSHOP_BENCH_CATALOG_FRESH=1 makes it anew.
	catalogDatabase = "modshop_bench_catalog"
	// catalogPageSize is the page size of every measured listing.
	catalogPageSize = 20
	// catalogFarPage is the page measured besides the first one.
	catalogFarPage = 30
)

// catalogWords are the searches measured: what each one matches in the
// generated catalog.
var catalogWords = []struct{ label, q string }{
	{"broad, in every name", "edition"},
	{"broad, in every description only", "handmade"},
	{"mid, 1% of names and 1% of descriptions", "kettle"},
	{"rare, 0.07% of names", "k0042"},
	{"two mid words", "oak kettle"},
}

// catalogCategories are the category pages measured (generated slugs).
var catalogCategories = []struct{ label, slug string }{
	{"top (20% of products)", "gen-3"},
	{"mid (2.5%)", "gen-3-5"},
	{"leaf (0.25%)", "gen-3-5-7"},
}

// BenchmarkCatalog measures search and category pages of a generated
// catalog of a million products: p50 and p99 of page 1 and of page 30
// (reached by following cursors) of several searches, of category pages
// and of browsing by name, sent one at a time over HTTP to the shop's real
// handler; and pgbench select-only on the same server before and after.
// It does its work once whatever b.N is: run it with -benchtime 1x.
func BenchmarkCatalog(b *testing.B) {
	if testing.Short() {
		b.Skip("load benchmark: skipped with -short")
	}
	phase := min(phaseLength(b), 20*time.Second)
	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	var rows []row
	dbURL, took := catalogDatabaseURL(b, server)
	var pgbench *selectOnly
	if os.Getenv("MODSHOP_BENCH_CATALOG_GENERATE_ONLY") == "" {
		pgbench = startSelectOnly(b, phase, &rows)
	}
	defaults := app.DefaultConfig()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	shop, err := app.Open(b.Context(), cfg, apptest.Logger())
	if err != nil {
		b.Fatalf("open shop: %v", err)
	}
	srv := httptest.NewServer(shop.Handler())
	defer func() {
		srv.Close()
		if err := shop.Close(context.Background()); err != nil {
			b.Errorf("close shop: %v", err)
		}
	}()
	if took == 0 {
		took = generateCatalog(b, dbURL)
	}
	if os.Getenv("MODSHOP_BENCH_CATALOG_GENERATE_ONLY") != "" {
		return // the catalog is kept for the runs that measure
	}
	api := testkit.NewAPI(b, srv.URL, shop.OpenAPI())
	budget := catalogBudget()

	var lines []catalogLine
	add := func(group, label string, path string) {
		lines = append(lines, measureCatalogPath(b, api, srv.URL, group, label, path, budget))
	}
	for _, w := range catalogWords {
		q := url.Values{"q": {w.q}, "limit": {fmt.Sprint(catalogPageSize)}}
		add("search", w.label+fmt.Sprintf(" (%q)", w.q), "/api/v1/products?"+q.Encode())
	}
	for _, c := range catalogCategories {
		q := url.Values{"category": {c.slug}, "limit": {fmt.Sprint(catalogPageSize)}}
		add("category", c.label+" "+c.slug, "/api/v1/products?"+q.Encode())
	}
	add("browse", "by name", "/api/v1/products?"+url.Values{"limit": {fmt.Sprint(catalogPageSize)}}.Encode())

	pgbench.run(b, "after", &rows)
	ref := pgbench.ref()

	printHead(os.Stdout, "modshop catalog benchmark", server)
	fmt.Printf("shop: in process, loopback HTTP, %d connections per module pool; catalog: %d products generated in SQL (%s), anonymous requests one at a time, %d a page\n\n",
		defaults.DBMaxConns, catalogProducts, took.Round(time.Second), catalogPageSize)
	printRequests(os.Stdout, ref, rows)
	fmt.Println()
	printCatalogLines(os.Stdout, lines)

	worst := func(group string, page int, p float64) float64 {
		v := 0.0
		for _, l := range lines {
			if l.group == group {
				v = max(v, l.ms(page, p))
			}
		}
		return v
	}
	figures := map[string]float64{
		"catalog.select_only_tps":   ref,
		"catalog.search_p1_p50_ms":  worst("search", 1, 50),
		"catalog.search_p1_p99_ms":  worst("search", 1, 99),
		"catalog.search_p30_p50_ms": worst("search", catalogFarPage, 50),
		"catalog.search_p30_p99_ms": worst("search", catalogFarPage, 99),
		"catalog.category_p50_ms":   max(worst("category", 1, 50), worst("category", catalogFarPage, 50)),
		"catalog.category_p99_ms":   max(worst("category", 1, 99), worst("category", catalogFarPage, 99)),
	}
	fmt.Println("\nrecorded (worst of each group, pages 1 and 30 for categories):")
	for _, k := range []string{"catalog.select_only_tps", "catalog.search_p1_p50_ms", "catalog.search_p1_p99_ms",
		"catalog.search_p30_p50_ms", "catalog.search_p30_p99_ms", "catalog.category_p50_ms", "catalog.category_p99_ms"} {
		fmt.Printf("  %s = %.2f\n", k, figures[k])
		if err := benchkit.Record(k, figures[k]); err != nil {
			b.Error(err)
		}
	}
	b.ReportMetric(0, "ns/op")
	if ref > 0 {
		b.ReportMetric(ref, "pgbench_S_tps")
	}
	for _, l := range lines {
		if l.failed > 0 {
			b.Errorf("%s %s: %d requests failed; first: %s", l.group, l.label, l.failed, l.firstErr)
		}
	}
}

// catalogBudget is how long each measured page is requested again and
// again (at most 200 times): MODSHOP_BENCH_PHASE / 4, 5s by default.
func catalogBudget() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MODSHOP_BENCH_PHASE")); err == nil && d > 0 {
		return max(d/4, time.Second)
	}
	return 5 * time.Second
}

// catalogLine is one listing's latencies at page 1 and at the far page.
type catalogLine struct {
	group, label string
	pages        map[int][]time.Duration
	reached      int // the far page, or the last one there is
	failed       int
	firstErr     string
}

func (l catalogLine) ms(page int, p float64) float64 {
	if page != 1 {
		page = l.reached
	}
	d := l.pages[page]
	if len(d) == 0 {
		return 0
	}
	return benchkit.Millis(benchkit.Percentile(d, p))
}

// measureCatalogPath checks page 1 of path against the OpenAPI document,
// follows cursors to page catalogFarPage (or the last page), then requests
// page 1 and that page again and again for budget each.
func measureCatalogPath(b *testing.B, api *testkit.API, base, group, label, path string, budget time.Duration) catalogLine {
	b.Helper()
	l := catalogLine{group: group, label: label, pages: map[int][]time.Duration{}, reached: 1}
	if resp := api.Do("GET", path, nil); resp.Status != http.StatusOK {
		b.Fatalf("GET %s: %d %.300s", path, resp.Status, resp.Body)
	}
	client := benchkit.NewHTTPClient(1)
	defer client.CloseIdleConnections()
	get := func(p string) (next string, d time.Duration, err error) {
		start := time.Now()
		resp, err := client.Get(base + p)
		body, err := answer(resp, err, http.StatusOK)
		d = time.Since(start)
		if err != nil {
			return "", d, err
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return "", d, err
		}
		if len(page.Items) == 0 {
			return "", d, errors.New("an empty page")
		}
		if page.NextCursor != nil {
			next = *page.NextCursor
		}
		return next, d, nil
	}
	farPath := path
	following := time.Now()
	for page := 1; page < catalogFarPage && time.Since(following) < 3*budget; page++ {
		next, _, err := get(farPath)
		if err != nil {
			l.failed++
			l.firstErr = fmt.Sprintf("following cursors, page %d: %v", page, err)
			return l
		}
		if next == "" {
			break
		}
		farPath = path + "&" + url.Values{"cursor": {next}}.Encode()
		l.reached = page + 1
	}
	for _, page := range []int{1, l.reached} {
		p := path
		if page != 1 {
			p = farPath
		}
		deadline := time.Now().Add(budget)
		for i := 0; i < 200 && (i < 3 || time.Now().Before(deadline)); i++ {
			_, d, err := get(p)
			if err != nil {
				l.failed++
				if l.firstErr == "" {
					l.firstErr = fmt.Sprintf("page %d: %v", page, err)
				}
			}
			if i > 0 || budget < time.Second { // the first one warms the caches
				l.pages[page] = append(l.pages[page], d)
			}
		}
	}
	return l
}

func printCatalogLines(w io.Writer, lines []catalogLine) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.Debug)
	fmt.Fprintln(tw, "listing\tpage 1 p50\tp99\tn\tfar page\tp50\tp99\tn\tfailed\t")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s: %s\t%.1f ms\t%.1f ms\t%d\t%d\t%.1f ms\t%.1f ms\t%d\t%d\t\n", l.group, l.label,
			l.ms(1, 50), l.ms(1, 99), len(l.pages[1]), l.reached, l.ms(l.reached, 50), l.ms(l.reached, 99), len(l.pages[l.reached]), l.failed)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nEach page is requested back to back by one client (after one warm-up request) for a few seconds, at most 200 times;\nthe far page is page 30 reached by following next_cursor, or the last page when there are fewer, or the\nlast one reached in 3 times that time (a slow listing).")
}

// catalogDatabaseURL returns the URL of the kept catalog database and how
// long generating it took, or 0 when it must be generated (it is then
// created empty; the shop's migrations make its schemas).
func catalogDatabaseURL(b *testing.B, server string) (string, time.Duration) {
	b.Helper()
	u, err := url.Parse(server)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + catalogDatabase
	dbURL := u.String()
	admin := testkit.OpenSQL(b, server)
	defer admin.Close()
	ctx := b.Context()
	var exists bool
	if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, catalogDatabase).Scan(&exists); err != nil {
		b.Fatal(err)
	}
	if exists && os.Getenv("MODSHOP_BENCH_CATALOG_FRESH") == "" {
		kept := testkit.OpenSQL(b, dbURL)
		var products, generator int
		var took float64
		err := kept.QueryRowContext(ctx, `SELECT products, generator, seconds FROM public.bench_catalog`).Scan(&products, &generator, &took)
		kept.Close()
		if err == nil && products == catalogProducts && generator == catalogGenerator {
			fmt.Printf("reusing the generated catalog in database %s (generated in %.0fs)\n", catalogDatabase, took)
			return dbURL, time.Duration(took * float64(time.Second))
		}
	}
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{catalogDatabase}.Sanitize()+" WITH (FORCE)"); err != nil {
		b.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{catalogDatabase}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	return dbURL, 0
}

// generateCatalog fills the migrated, empty catalog database with
// catalogProducts products in SQL: categories three deep (5 × 8 × 10),
// each product filed under one leaf, with its inventory and initial stock
// movement. Words are picked by hashing the product's number, so every run
// makes the same catalog. The secondary indexes of the big tables are
// dropped and made again from their own definitions after the rows are in
// (far faster than maintaining them row by row); nothing else is changed.
func generateCatalog(b *testing.B, dbURL string) time.Duration {
	b.Helper()
	start := time.Now()
	fmt.Printf("generating %d products in database %s...\n", catalogProducts, catalogDatabase)
	db := testkit.OpenSQL(b, dbURL)
	defer db.Close()
	ctx := b.Context()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	exec := func(what, q string, args ...any) {
		t := time.Now()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			b.Fatalf("generate catalog, %s: %v", what, err)
		}
		fmt.Printf("  %-28s %s\n", what, time.Since(t).Round(time.Millisecond))
	}
	exec("settings", `SET maintenance_work_mem = '512MB'; SET synchronous_commit = off`)
	var indexes []string
	rows, err := conn.QueryContext(ctx, `SELECT indexdef FROM pg_indexes i
		WHERE schemaname = 'products' AND tablename IN ('products', 'product_categories', 'inventory', 'stock_movements', 'category_listing')
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = 'products'::regnamespace)`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			b.Fatal(err)
		}
		indexes = append(indexes, def)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	exec("drop secondary indexes", `DO $$ DECLARE r record; BEGIN
		FOR r IN SELECT i.schemaname, i.indexname FROM pg_indexes i
			WHERE schemaname = 'products' AND tablename IN ('products', 'product_categories', 'inventory', 'stock_movements', 'category_listing')
			  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.connamespace = 'products'::regnamespace)
		LOOP EXECUTE format('DROP INDEX %I.%I', r.schemaname, r.indexname); END LOOP; END $$`)
	exec("categories", `
		INSERT INTO products.categories (id, slug, name, parent_id)
		SELECT gen_random_uuid(), 'gen-' || t, 'Department ' || t, NULL FROM generate_series(1, 5) t;
		INSERT INTO products.categories (id, slug, name, parent_id)
		SELECT gen_random_uuid(), 'gen-' || t || '-' || m, 'Aisle ' || t || '.' || m, c.id
		  FROM generate_series(1, 5) t CROSS JOIN generate_series(1, 8) m JOIN products.categories c ON c.slug = 'gen-' || t;
		INSERT INTO products.categories (id, slug, name, parent_id)
		SELECT gen_random_uuid(), 'gen-' || t || '-' || m || '-' || l, 'Shelf ' || t || '.' || m || '.' || l, c.id
		  FROM generate_series(1, 5) t CROSS JOIN generate_series(1, 8) m CROSS JOIN generate_series(1, 10) l
		  JOIN products.categories c ON c.slug = 'gen-' || t || '-' || m;
		INSERT INTO products.category_closure (ancestor_id, descendant_id, depth)
		WITH RECURSIVE up AS (
		    SELECT id AS descendant_id, id AS ancestor_id, parent_id, 0 AS depth FROM products.categories
		    UNION ALL
		    SELECT up.descendant_id, c.id, c.parent_id, up.depth + 1 FROM up JOIN products.categories c ON c.id = up.parent_id)
		SELECT ancestor_id, descendant_id, depth FROM up ON CONFLICT DO NOTHING`)
	// Words: adjective (40) material (40) noun (100) "k<code>" (1500
	// codes) "edition" in every name; every description says "handmade"
	// and names another noun (so a noun is in 1% of names and 1% of
	// descriptions).
	exec("word lists", `
		CREATE TEMP TABLE gen_words AS SELECT
		  '{classic,sturdy,compact,rustic,modern,vintage,elegant,simple,bold,gentle,bright,quiet,smooth,rough,tall,short,round,square,light,heavy,warm,cool,fresh,mellow,sharp,soft,tiny,grand,humble,noble,swift,steady,lucky,sunny,misty,frosty,golden,silver,crimson,azure}'::text[] AS adj,
		  '{oak,pine,walnut,maple,birch,cedar,bamboo,cotton,linen,wool,silk,leather,ceramic,porcelain,stone,marble,granite,glass,crystal,copper,brass,bronze,iron,steel,tin,clay,cork,rattan,jute,hemp,felt,velvet,denim,canvas,paper,cardboard,resin,acrylic,nylon,rubber}'::text[] AS mat,
		  '{kettle,teapot,mug,cup,bowl,plate,jar,vase,lamp,candle,basket,box,tray,board,knife,spoon,fork,ladle,whisk,grater,pan,pot,skillet,wok,sieve,funnel,bottle,flask,pitcher,carafe,tumbler,goblet,saucer,platter,cushion,blanket,rug,curtain,towel,apron,mitt,napkin,coaster,clock,mirror,frame,shelf,stool,chair,bench,table,desk,drawer,cabinet,hook,rack,crate,bucket,planter,shovel,rake,trowel,hammer,wrench,chisel,saw,drill,ladder,notebook,pen,pencil,eraser,ruler,stapler,folder,binder,envelope,stamp,globe,compass,lantern,torch,tent,hammock,backpack,wallet,purse,belt,scarf,glove,hat,sock,slipper,umbrella,whistle,bell,drum,flute,harp,kite}'::text[] AS noun`)
	exec("products", `
		INSERT INTO products.products (id, sku, name, description, price, active, created_at, updated_at)
		SELECT gen_random_uuid(), 'GEN-' || i,
		       initcap(w.adj[1 + (hashint4(i) & 1023) % 40]) || ' ' || w.mat[1 + (hashint4(i + 7000000) & 1023) % 40] || ' ' ||
		         w.noun[1 + (hashint4(i + 14000000) & 65535) % 100] || ', k' || lpad(((hashint4(i + 21000000) & 65535) % 1500)::text, 4, '0') || ' edition',
		       'Handmade from ' || w.mat[1 + (hashint4(i + 28000000) & 1023) % 40] || ' in a ' || w.adj[1 + (hashint4(i + 35000000) & 1023) % 40] ||
		         ' style. Pairs well with a ' || w.noun[1 + (hashint4(i + 42000000) & 65535) % 100] || '. Wipe clean; keep dry.',
		       (1 + (hashint4(i + 49000000) & 65535) % 50000 / 100.0)::numeric(10,2),
		       i % 100 <> 0,
		       now() - i * interval '1 minute', now() - i * interval '1 minute'
		  FROM generate_series(1, $1::int) i CROSS JOIN gen_words w`, catalogProducts)
	exec("product categories", `
		INSERT INTO products.product_categories (product_id, category_id)
		SELECT p.id, c.id FROM products.products p
		  JOIN products.categories c ON c.slug = 'gen-' || (1 + (hashtext(p.sku) & 1023) % 5) || '-' || (1 + (hashtext(p.sku || 'm') & 1023) % 8) || '-' || (1 + (hashtext(p.sku || 'l') & 1023) % 10)
		 WHERE p.sku LIKE 'GEN-%'`)
	exec("inventory and stock", `
		INSERT INTO products.inventory (product_id, on_hand) SELECT id, 100 FROM products.products WHERE sku LIKE 'GEN-%';
		INSERT INTO products.stock_movements (product_id, kind, delta, reason) SELECT id, 'initial', 100, 'initial stock' FROM products.products WHERE sku LIKE 'GEN-%'`)
	for i, def := range indexes {
		exec(fmt.Sprintf("index %d of %d", i+1, len(indexes)), def)
	}
	exec("vacuum analyze", `VACUUM (ANALYZE) products.products, products.product_categories, products.inventory, products.stock_movements, products.categories, products.category_closure, products.category_listing`)
	took := time.Since(start)
	exec("marker table", `CREATE TABLE public.bench_catalog (products integer NOT NULL, generator integer NOT NULL, seconds float8 NOT NULL)`)
	exec("marker", `INSERT INTO public.bench_catalog VALUES ($1, $2, $3)`, catalogProducts, catalogGenerator, took.Seconds())
	fmt.Printf("generated in %s\n", took.Round(time.Second))
	return took
}
