package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

const (
	benchUsers    = 50 // accounts logged in to and sessions used for /me
	benchPassword = "correct horse battery staple"
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

	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	var rows []row

	// 1. pgbench select-only on a scratch database of the same server.
	pgbench := startSelectOnly(b, phase, &rows)

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
	login := request(func(ctx context.Context, c *http.Client, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, shop.URL+"/api/v1/sessions", bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		return expect(c.Do(req))(http.StatusCreated)
	})
	me := request(func(ctx context.Context, c *http.Client, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, shop.URL+"/api/v1/users/me", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tokens[i%len(tokens)])
		return expect(c.Do(req))(http.StatusOK)
	})

	loginM := measure(b, "POST /api/v1/sessions (log-in)", login, warmup, phase, halfPhase, &rows)
	// A user keeps at most 20 sessions: the log-ins above ended the ones
	// makeUsers opened, so /me gets sessions of its own.
	for i, n := range names {
		tokens[i] = shop.Login(b, n, benchPassword)
	}
	meM := measure(b, "GET /api/v1/users/me", me, warmup, phase, halfPhase, &rows)

	// pgbench again, to show how much the machine drifted during the run.
	pgbench.run(b, "after", &rows)

	// 3. Report.
	ref := pgbench.ref()
	printReport(os.Stdout, server, defaults.DBMaxConns, ref, rows)

	b.ReportMetric(0, "ns/op") // one run of ~1.5 minutes: meaningless per op
	if ref > 0 {
		b.ReportMetric(ref, "pgbench_S_tps")
	}
	reportMeasured(b, "login", loginM, ref)
	reportMeasured(b, "me", meM, ref)
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

func printReport(w io.Writer, server string, poolSize int, ref float64, rows []row) {
	printHead(w, "modshop users benchmark", server)
	fmt.Fprintf(w, "shop: in process (apptest), loopback HTTP, %d connections per module pool, log-in throttles raised, argon2id as shipped\n\n", poolSize)
	printRequests(w, ref, rows)
}
