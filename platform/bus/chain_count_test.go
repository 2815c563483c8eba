//go:build unix

package bus

// BenchmarkBusChainStatements counts what one five-hop chain of
// BenchmarkBusChain costs the database at a fixed, modest rate: commits
// (pg_stat_database.xact_commit, read-only polls included) and, when the
// server has pg_stat_statements loaded, statements per chain by kind:
//
//	TEST_DATABASE_URL=<a scratch server with shared_preload_libraries=pg_stat_statements> \
//	MODSHOP_CHAIN_RATE=200 go test -run '^$' -bench BenchmarkBusChainStatements -benchtime 1x ./platform/bus/
//
// Not a throughput figure: run it with -cpuprofile for a profile of the
// Go side at that rate.

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

func BenchmarkBusChainStatements(b *testing.B) {
	ctx := context.Background()
	rate := 200.0
	if v, err := strconv.ParseFloat(os.Getenv("MODSHOP_CHAIN_RATE"), 64); err == nil && v > 0 {
		rate = v
	}
	e, log, bus := warmChainBus(ctx, b, Config{})
	defer bus.Close()
	time.Sleep(statsFlushWait)
	haveStatements := e.admin.QueryRowContext(ctx, `SELECT pg_stat_statements_reset()`).Err() == nil
	commits0, _ := (&benchEnv{admin: e.admin}).dbStats(ctx)
	keys, _ := openLoop(ctx, rate, func(i int) (string, error) {
		key := fmt.Sprintf("count-%07d", i)
		at, err := startChain(ctx, bus, e.mods["chaina"], key)
		if err != nil {
			return "", err
		}
		log.start(key, at)
		return key, nil
	})
	for t0 := time.Now(); time.Since(t0) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if _, missing := log.latencies(keys); missing == 0 {
			break
		}
	}
	lat, missing := log.latencies(keys)
	time.Sleep(statsFlushWait)
	commits1, _ := (&benchEnv{admin: e.admin}).dbStats(ctx)
	n := float64(len(keys))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\n%d chains at %.0f/s (unfinished %d), chain %s\n", len(keys), rate, missing, fmtLat(benchkit.Summarize(lat, missing)))
	fmt.Fprintf(w, "commits per chain (this database, read-only included): %.2f\n", float64(commits1-commits0)/n)
	if haveStatements {
		rows, err := e.admin.QueryContext(ctx, `SELECT calls, regexp_replace(left(query, 110), '\s+', ' ', 'g')
			FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`)
		if err != nil {
			b.Fatal(err)
		}
		type stmt struct {
			calls int64
			query string
		}
		var all []stmt
		var total int64
		for rows.Next() {
			var s stmt
			if err := rows.Scan(&s.calls, &s.query); err != nil {
				b.Fatal(err)
			}
			all = append(all, s)
			total += s.calls
		}
		rows.Close()
		sort.Slice(all, func(i, j int) bool { return all[i].calls > all[j].calls })
		fmt.Fprintf(w, "statements per chain (pg_stat_statements, every statement of this database incl. BEGIN/COMMIT): %.1f\n", float64(total)/n)
		for _, s := range all {
			if float64(s.calls)/n < 0.05 {
				continue
			}
			fmt.Fprintf(w, "  %.2f\t%s\t\n", float64(s.calls)/n, s.query)
		}
	}
	w.Flush()
	b.ReportMetric(0, "ns/op")
}
