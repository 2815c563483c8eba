//go:build unix

package bus

// BenchmarkBusChain measures the highest rate of five-hop event chains the
// bus keeps up with, against pgbench TPC-B tps measured in the same run:
//
//	go test -run '^$' -bench BenchmarkBusChain -benchtime 1x ./platform/bus/
//
// It is the floor under any workflow of that shape on this bus: a chain is
// a "start" transaction in module a (one row and the first event), then
// five hops a→b→a→c→a→b, each handler applying its message once (inbox
// mark) with one row of effect and publishing the next event in the same
// transaction. Nothing else: no HTTP, no reads, no business rules. The
// rate is the highest fixed, open-loop start rate from 8 publishers at
// which, at the end of a 5 s step, fewer than a quarter second's worth of
// chains are unfinished, all finish within a second after it, and no
// publisher fell more than 100 ms behind its schedule (the criteria of
// BenchmarkBus's sustained figure).
//
// Every handler runs in its subscriber's batch transaction (the bus's
// default and its cheapest path); a second ramp gives the same chain a
// transaction per message (Config.SeparateTransactions).

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

const chainHops = 5

// chainEvent[M] is one hop's event; M (h1..h5) gives each hop its topic.
type chainEvent[M any] struct {
	Key string `json:"key"`
}

func (chainEvent[M]) EventName() string {
	return "bench.chain_" + strings.ToLower(reflect.TypeFor[M]().Name()) + ".v1"
}

type (
	h1 struct{}
	h2 struct{}
	h3 struct{}
	h4 struct{}
	h5 struct{}
)

// chainEnv is one database with three module schemas, chaina, chainb and
// chainc, each with its own pool, as three modules of one binary.
type chainEnv struct {
	url        string
	admin      *sql.DB
	mods       map[string]*gorm.DB
	postmaster int // the server's main process, to tell its CPU from other processes'; 0 if not on this machine
}

func newChainEnv(b testing.TB) *chainEnv {
	b.Helper()
	ctx := context.Background()
	e := &chainEnv{url: testkit.NewDatabase(b), mods: map[string]*gorm.DB{}}
	admin, err := db.Open(ctx, e.url, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	e.admin = admin
	var backend int
	if err := admin.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	e.postmaster = benchkit.Postmaster(backend)
	for _, m := range []string{"chaina", "chainb", "chainc"} {
		if err := db.Provision(ctx, admin, m); err != nil {
			b.Fatal(err)
		}
		if err := Provision(ctx, admin, m); err != nil {
			b.Fatal(err)
		}
		pool, err := db.OpenModule(ctx, e.url, m, benchPublishers+4)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pool.Close() })
		g, err := db.Gorm(pool)
		if err != nil {
			b.Fatal(err)
		}
		for _, ddl := range []string{
			`CREATE TABLE starts (key text PRIMARY KEY)`,
			`CREATE TABLE steps (key text NOT NULL, hop int NOT NULL, PRIMARY KEY (key, hop))`,
		} {
			if err := g.Exec(ddl).Error; err != nil {
				b.Fatal(err)
			}
		}
		e.mods[m] = g
	}
	return e
}

// chainLog records when each chain started (its start transaction
// committed) and when its last hop ran.
type chainLog struct {
	mu       sync.Mutex
	started  map[string]time.Time
	finished map[string]time.Time
	done     atomic.Int64
}

func (l *chainLog) start(key string, at time.Time) {
	l.mu.Lock()
	l.started[key] = at
	l.mu.Unlock()
}

func (l *chainLog) finish(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.finished[key]; !seen {
		l.finished[key] = at
		l.done.Add(1)
	}
}

// latencies of keys (start to last hop) and how many have not finished.
func (l *chainLog) latencies(keys []string) ([]time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []time.Duration
	missing := 0
	for _, k := range keys {
		f, ok := l.finished[k]
		if !ok {
			missing++
			continue
		}
		out = append(out, max(f.Sub(l.started[k]), 0))
	}
	return out, missing
}

// hop is one handler: apply the message with one row, publish the next.
func hop[In Event](b *Bus, e *chainEnv, name, module string, n int, next func(key string) Event, log *chainLog) {
	Handle(b, name, Consumer{Module: module, DB: e.mods[module]}, func(ctx context.Context, tx *gorm.DB, ev In) error {
		key := reflect.ValueOf(ev).Field(0).String()
		if err := tx.Exec(`INSERT INTO steps (key, hop) VALUES (?, ?)`, key, n).Error; err != nil {
			return err
		}
		if next == nil {
			log.finish(key, time.Now())
			return nil
		}
		return b.Publish(ctx, tx, next(key))
	})
}

// chainBus builds a bus with the five hops wired a→b→a→c→a→b.
func chainBus(b testing.TB, e *chainEnv, cfg Config, log *chainLog) *Bus {
	reg := NewRegistry()
	reg.Register(chainEvent[h1]{})
	reg.Register(chainEvent[h2]{})
	reg.Register(chainEvent[h3]{})
	reg.Register(chainEvent[h4]{})
	reg.Register(chainEvent[h5]{})
	cfg.DatabaseURL = e.url
	bus, err := New(context.Background(), cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	hop[chainEvent[h1]](bus, e, "chainb.hop1", "chainb", 1, func(k string) Event { return chainEvent[h2]{Key: k} }, log)
	hop[chainEvent[h2]](bus, e, "chaina.hop2", "chaina", 2, func(k string) Event { return chainEvent[h3]{Key: k} }, log)
	hop[chainEvent[h3]](bus, e, "chainc.hop3", "chainc", 3, func(k string) Event { return chainEvent[h4]{Key: k} }, log)
	hop[chainEvent[h4]](bus, e, "chaina.hop4", "chaina", 4, func(k string) Event { return chainEvent[h5]{Key: k} }, log)
	hop[chainEvent[h5]](bus, e, "chainb.hop5", "chainb", 5, nil, log)
	return bus
}

// startChain commits one start row and the first hop's event in module a.
func startChain(ctx context.Context, bus *Bus, a *gorm.DB, key string) (time.Time, error) {
	err := a.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO starts (key) VALUES (?)`, key).Error; err != nil {
			return err
		}
		return bus.Publish(ctx, tx, chainEvent[h1]{Key: key})
	})
	return time.Now(), err
}

type chainStep struct {
	rate       float64
	started    int
	unfinished int // when the step's publishing ended
	drain      time.Duration
	late       time.Duration
	lat        benchkit.Summary
	cpu        time.Duration // machine CPU per chain over the step
	ownCPU     time.Duration // cpu without other processes' (this process, the PostgreSQL server, interrupts)
	commits    float64       // per chain, this database
	ok         bool
}

type chainResult struct {
	name  string
	steps []chainStep
	best  chainStep
}

func BenchmarkBusChain(b *testing.B) {
	ctx := context.Background()
	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	started := time.Now()
	desc := serverDescription(ctx, b, server)
	pg, err := runPgbench(ctx, b, server)
	if err != nil {
		b.Fatalf("pgbench: %v", err)
	}
	b.Logf("pgbench: %.0f tps (8 clients); %v so far", pg.tps8, time.Since(started).Round(time.Second))

	var results []chainResult
	variants := []struct {
		name string
		cfg  Config
	}{
		{"in the subscribers' batch transactions (as shipped)", Config{}},
		{"a transaction per message", Config{SeparateTransactions: true}},
	}
	if benchFast() {
		variants = variants[:1]
	}
	for _, v := range variants {
		results = append(results, rampChain(ctx, b, v.name, v.cfg, pg.tps8))
		b.Logf("%s: done, %v so far", v.name, time.Since(started).Round(time.Second))
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "\nmodshop bus: five-hop chains (start in a, then a→b→a→c→a→b; each hop: inbox mark + one row + the next event), %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "%s; took %v\n", desc, time.Since(started).Round(time.Second))
	fmt.Fprintf(w, "pgbench TPC-B (scale %d, %d clients, %v): %.0f tps\n\n", pgbenchScale, pgbenchClients, pgbenchDuration, pg.tps8)
	fmt.Fprintln(w, "handlers\tsustained chains/s\t÷ TPC-B\tmessages/s ÷ TPC-B\tchain p50 / p99\tmachine CPU per chain (without other processes')\tcommits per chain\t")
	for _, r := range results {
		if r.best.rate == 0 {
			fmt.Fprintf(w, "%s\tnone kept up\t\t\t\t\t\t\n", r.name)
			continue
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.3f\t%.2f\t%s / %s\t%s (%s)\t%.1f\t\n", r.name, r.best.rate, r.best.rate/pg.tps8,
			r.best.rate*chainHops/pg.tps8, benchkit.FormatShort(r.best.lat.P50), benchkit.FormatShort(r.best.lat.P99), benchkit.FormatShort(r.best.cpu),
			benchkit.FormatShort(r.best.ownCPU), r.best.commits)
	}
	fmt.Fprintln(w, "\nramp steps (open loop, 5 s each; kept up = unfinished ≤ 0.25 s of chains at the end, all done ≤ 1 s later, publishers ≤ 100 ms late):")
	for _, r := range results {
		fmt.Fprintf(w, "  %s:", r.name)
		for _, s := range r.steps {
			mark := "ok"
			if !s.ok {
				mark = "behind"
			}
			fmt.Fprintf(w, " %.0f/s %s (unfinished %d, drain %s, late %s);", s.rate, mark, s.unfinished, benchkit.FormatShort(s.drain), benchkit.FormatShort(s.late))
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pg.tps8, "pgbench-tps")
	if pg.tps8 > 0 {
		b.ReportMetric(results[0].best.rate/pg.tps8, "chains/pgbench")
		if len(results) > 1 {
			b.ReportMetric(results[1].best.rate/pg.tps8, "separate-chains/pgbench")
		}
	}
	if results[0].best.rate == 0 {
		b.Fatal("no rate kept up, not even the first")
	}
	// The figures of issue 17's table (make bench; benchkit.Record).
	benchRecord(b, "chain.tpcb_tps", pg.tps8)
	benchRecord(b, "chain.sustained_per_s", results[0].best.rate)
	benchRecord(b, "chain.cpu_ms_per_chain", benchkit.Millis(results[0].best.ownCPU))
}

// warmChainBus starts a chain environment and its bus with cfg and warms
// it up with 20 chains (plans, connections, the subscribers' first
// polls), waiting at most 10 s for them; the caller closes the bus.
func warmChainBus(ctx context.Context, b testing.TB, cfg Config) (*chainEnv, *chainLog, *Bus) {
	e := newChainEnv(b)
	log := &chainLog{started: map[string]time.Time{}, finished: map[string]time.Time{}}
	bus := chainBus(b, e, cfg, log)
	if err := bus.Start(ctx); err != nil {
		bus.Close()
		b.Fatal(err)
	}
	for i := range 20 {
		key := fmt.Sprintf("warm-%02d", i)
		at, err := startChain(ctx, bus, e.mods["chaina"], key)
		if err != nil {
			bus.Close()
			b.Fatal(err)
		}
		log.start(key, at)
	}
	for t0 := time.Now(); log.done.Load() < 20 && time.Since(t0) < 10*time.Second; {
		time.Sleep(10 * time.Millisecond)
	}
	return e, log, bus
}

// rampChain finds the highest start rate the chain keeps up with, from
// 0.08 × tps up by 1.15 per step; a step that falls behind is repeated
// once, the second in a row ends the ramp.
func rampChain(ctx context.Context, b testing.TB, name string, cfg Config, tps float64) chainResult {
	res := chainResult{name: name}
	e, log, bus := warmChainBus(ctx, b, cfg)
	defer bus.Close()
	if log.done.Load() < 20 {
		b.Fatalf("%s: warm-up chains unfinished after 10 s", name)
	}
	res.steps, res.best = ramp(0.08*tps, 30, func(rate float64, n int) (chainStep, bool) {
		st := chainOnce(ctx, b, e, bus, log, rate, n)
		b.Logf("%s: %.0f chains/s: unfinished %d at the end, drained in %s, publishers up to %s late, chain %s, kept up: %v",
			name, rate, st.unfinished, benchkit.FormatShort(st.drain), benchkit.FormatShort(st.late), fmtLat(st.lat), st.ok)
		return st, st.ok
	})
	return res
}

func chainOnce(ctx context.Context, b testing.TB, e *chainEnv, bus *Bus, log *chainLog, rate float64, n int) chainStep {
	st := chainStep{rate: rate}
	commits0, _ := (&benchEnv{admin: e.admin}).dbStats(ctx)
	cpu0 := benchkit.MarkCPU()
	procs0 := benchkit.MarkProcesses(e.postmaster)
	keys, late := openLoop(ctx, rate, func(i int) (string, error) {
		key := fmt.Sprintf("c%d-%07d", n, i)
		at, err := startChain(ctx, bus, e.mods["chaina"], key)
		if err != nil {
			b.Logf("chain start: %v", err)
			return "", err
		}
		log.start(key, at)
		return key, nil
	})
	end := time.Now()
	st.started = len(keys)
	st.late = late
	_, st.unfinished = log.latencies(keys)
	missing := st.unfinished
	for missing > 0 && time.Since(end) < 10*time.Second {
		time.Sleep(5 * time.Millisecond)
		_, missing = log.latencies(keys)
	}
	st.drain = time.Since(end)
	cpu := cpu0.Since()
	split := procs0.Since()
	lat, missing := log.latencies(keys)
	st.lat = benchkit.Summarize(lat, missing)
	if st.started > 0 {
		st.cpu = cpu.MachineBusy / time.Duration(st.started)
		st.ownCPU = st.cpu
		if split.OK {
			st.ownCPU = time.Duration((split.Self + split.Server + split.IRQ) * float64(cpu.Wall) / float64(st.started))
		}
		time.Sleep(statsFlushWait)
		if commits1, _ := (&benchEnv{admin: e.admin}).dbStats(ctx); commits0 >= 0 && commits1 >= 0 {
			st.commits = float64(commits1-commits0) / float64(st.started)
		}
	}
	st.ok = missing == 0 && float64(st.unfinished) <= rate/4 && st.drain <= time.Second && st.late <= 100*time.Millisecond
	return st
}
