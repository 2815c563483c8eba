package bench_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/pgembed"
	"github.com/modshop/modshop/platform/testkit"
)

// Statements per confirmed order are counted on a scratch server of its
// own: pg_stat_statements must be in shared_preload_libraries, which the
// shared server (and a developer's) usually lacks, and a restart is the
// only way to add it. The scratch server is an embedded one (pgembed, so
// it also runs when the benchmark runs as root), started once, given the
// library with ALTER SYSTEM, and restarted.

// statementsLength bounds the counted phase: the count per order is
// stable after a few hundred orders.
const statementsLength = 10 * time.Second

// statementCount is what one counted phase found.
type statementCount struct {
	rate            float64
	length          time.Duration
	placed          int
	confirmed       int
	calls           int64   // every statement of the shop's database, nested ones included
	txControl       int64   // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE among calls
	nested          int64   // statements run inside another (FK checks, functions)
	execMs          float64 // their execution time, summed
	top             []statementCalls
	skipped, reason string // not measured, and why
}

type statementCalls struct {
	query    string
	calls    int64
	toplevel bool
}

func (c statementCount) perOrder(n int64) float64 {
	return float64(n) / float64(max(c.confirmed, 1))
}

// countStatements runs the shop on a scratch server with
// pg_stat_statements (track = all: the statements foreign-key checks run
// are counted) and places orders at rate for d, as BenchmarkOrders does;
// it returns every statement the shop's database ran from the first order
// until the last was final, per confirmed order. Without PostgreSQL's
// binaries or the library it returns why it measured nothing.
func countStatements(b *testing.B, rate float64, d time.Duration) statementCount {
	ctx := b.Context()
	res := statementCount{rate: rate, length: d}
	serverURL, stop, err := startStatementsServer(ctx)
	if err != nil {
		res.skipped, res.reason = "not measured", err.Error()
		return res
	}
	b.Cleanup(stop) // after the shop's own cleanup (registered later, run first)
	mon, err := sql.Open("pgx", serverURL)
	if err != nil {
		b.Fatal(err)
	}
	defer mon.Close()
	mon.SetMaxOpenConns(1)
	if _, err := mon.ExecContext(ctx, `CREATE DATABASE shop`); err != nil {
		b.Fatal(err)
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/shop"
	shop := startShopOn(b, u.String())
	shopDB, err := sql.Open("pgx", shop.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer shopDB.Close()
	shopDB.SetMaxOpenConns(1)
	products, tokens := prepareShop(b, shop)

	client := benchkit.NewHTTPClient(openLoopInFlight)
	defer client.CloseIdleConnections()
	place := placeOrders(client, shop.URL, tokens, products)
	// Warm up (plans, pools, the subscribers' first polls), then count.
	benchkit.OpenLoop(ctx, 20, 2*time.Second, openLoopInFlight, place(&batch{name: "warm", seed: 7 << 24}))
	if _, err := waitFinished(ctx, shopDB, drainLimit); err != nil {
		b.Fatal(err)
	}
	if _, err := mon.ExecContext(ctx, `SELECT pg_stat_statements_reset()`); err != nil {
		b.Fatal(err)
	}
	bt := &batch{name: "statements", seed: 8 << 24}
	load := benchkit.OpenLoop(ctx, rate, d, openLoopInFlight, place(bt))
	checkFailures(b, "statements", load)
	if _, err := waitFinished(ctx, shopDB, drainLimit); err != nil {
		b.Fatal(err)
	}
	res.placed = len(bt.ids)
	if err := shopDB.QueryRowContext(ctx, `SELECT count(*) FROM orders.orders WHERE status = 'confirmed' AND id = ANY($1::uuid[])`, bt.ids).
		Scan(&res.confirmed); err != nil {
		b.Fatal(err)
	}
	rows, err := mon.QueryContext(ctx, `
		SELECT s.calls, s.total_exec_time, s.toplevel, regexp_replace(s.query, '\s+', ' ', 'g')
		  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		 WHERE d.datname = 'shop'`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c statementCalls
		var ms float64
		if err := rows.Scan(&c.calls, &ms, &c.toplevel, &c.query); err != nil {
			b.Fatal(err)
		}
		res.calls += c.calls
		res.execMs += ms
		if txControl.MatchString(c.query) {
			res.txControl += c.calls
		}
		if !c.toplevel {
			res.nested += c.calls
		}
		res.top = append(res.top, c)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	slices.SortFunc(res.top, func(a, b statementCalls) int { return int(b.calls - a.calls) })
	shop.CheckInvariants(b)
	return res
}

var txControl = regexp.MustCompile(`(?i)^\s*(begin|start transaction|commit|rollback|savepoint|release)\b`)

// startStatementsServer starts an embedded server with pg_stat_statements
// loaded and tracking nested statements; stop stops it and removes its
// files.
func startStatementsServer(ctx context.Context) (serverURL string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "modshop-bench-statements-")
	if err != nil {
		return "", nil, err
	}
	// Reachable by the account the server runs as when this runs as root.
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- a scratch directory of throwaway data
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cfg := pgembed.Config{Dir: filepath.Join(dir, "pg"), Port: port, Database: "bench"}
	var srv *pgembed.Server
	stop = func() {
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = srv.Stop(sctx)
			_ = os.RemoveAll(srv.Dir())
		}
		_ = os.RemoveAll(dir)
	}
	fail := func(err error) (string, func(), error) {
		stop()
		return "", nil, fmt.Errorf("scratch server with pg_stat_statements: %w", err)
	}
	if srv, err = pgembed.Start(ctx, cfg); err != nil {
		return fail(err)
	}
	if err := execOn(ctx, srv.URL(), `ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'`); err != nil {
		return fail(err)
	}
	if err := srv.Stop(ctx); err != nil {
		return fail(err)
	}
	if srv, err = pgembed.Start(ctx, cfg); err != nil {
		return fail(err)
	}
	for _, stmt := range []string{
		`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
		`ALTER SYSTEM SET pg_stat_statements.track = 'all'`,
		`SELECT pg_reload_conf()`,
	} {
		if err := execOn(ctx, srv.URL(), stmt); err != nil {
			return fail(err)
		}
	}
	return srv.URL(), stop, nil
}

func freePort() (uint32, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port), nil
}

// startShopOn is apptest.Start on a database of another server than the
// tests': the shop as BenchmarkOrders runs it, closed when b ends.
func startShopOn(b *testing.B, databaseURL string) *apptest.Shop {
	b.Helper()
	cfg := shopConfig()
	cfg.DatabaseURL = databaseURL
	shop, err := app.Open(context.Background(), cfg, apptest.Logger())
	if err != nil {
		b.Fatalf("open shop: %v", err)
	}
	srv := httptest.NewServer(shop.Handler())
	b.Cleanup(func() {
		srv.Close()
		if err := shop.Close(context.Background()); err != nil {
			b.Errorf("close shop: %v", err)
		}
	})
	return &apptest.Shop{Shop: shop, URL: srv.URL, DatabaseURL: databaseURL, API: testkit.NewAPI(b, srv.URL, shop.OpenAPI())}
}

// shopConfig is the shop as the order benchmarks run it: production pool
// size, log-in throttles out of the way (all load comes from 127.0.0.1),
// the demo catalog.
func shopConfig() app.Config {
	cfg := app.DefaultConfig()
	cfg.LoginPerClient = 1 << 30
	cfg.LoginPerAccount = 1 << 30
	cfg.SeedDemo = true
	return cfg
}

// prepareShop restocks every product of the demo catalog and logs the
// benchmark's customers in.
func prepareShop(b *testing.B, shop *apptest.Shop) (products, tokens []string) {
	b.Helper()
	products = productIDs(b, shop)
	_, adminToken := shop.Admin(b)
	for _, id := range products {
		resp := shop.API.Do("POST", "/api/v1/products/"+id+"/stock",
			map[string]any{"delta": stockDelta, "reason": "order benchmark"}, testkit.Bearer(adminToken))
		if resp.Status != http.StatusOK {
			b.Fatalf("restock %s: %d %s", id, resp.Status, resp.Body)
		}
	}
	_, tokens = makeUsers(b, shop)
	return products, tokens
}

// print reports the count: per confirmed order, and the statements that
// ran most often.
func (c statementCount) print(w io.Writer) {
	if c.skipped != "" {
		fmt.Fprintf(w, "\nSQL statements per confirmed order: %s (%s)\n", c.skipped, c.reason)
		return
	}
	fmt.Fprintf(w, "\nSQL statements per confirmed order (scratch server with pg_stat_statements, track = all; the shop alone at %.1f orders/s for %v, %d placed, %d confirmed; every statement of its database from the first order until the last was final):\n",
		c.rate, c.length, c.placed, c.confirmed)
	fmt.Fprintf(w, "  %.1f statements per order: %.1f transaction control (BEGIN, COMMIT, ...), %.1f nested (foreign-key checks), %.1f others; execution %.2f ms per order\n",
		c.perOrder(c.calls), c.perOrder(c.txControl), c.perOrder(c.nested), c.perOrder(c.calls-c.txControl-c.nested), c.execMs/float64(max(c.confirmed, 1)))
	for _, s := range c.top[:min(15, len(c.top))] {
		q := s.query
		if len(q) > 140 {
			q = q[:140] + "…"
		}
		nested := ""
		if !s.toplevel {
			nested = " (nested)"
		}
		fmt.Fprintf(w, "  %6.2f%s %s\n", c.perOrder(s.calls), nested, strings.TrimSpace(q))
	}
}
