//go:build unix

package bus

// BenchmarkBus measures the bus against the PostgreSQL server it runs on, all
// in one run, and prints one table:
//
//	TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench BenchmarkBus -benchtime 1x ./platform/bus/
//
// It takes about 3 minutes and does its work once whatever b.N is (one run
// lasts far longer than any benchtime, so the framework never asks for more).
//
//  1. pgbench TPC-B (scale 8; 8 clients for 15 s, then 1 client for 5 s) on
//     a scratch database, dropped afterwards: the server's commit capacity.
//  2. For the modshop bus and for stock watermill-sql settings: idle hop
//     latency (one message at a time, 50-100 ms apart; hop = handler entry
//     minus the moment the publisher's Commit returned), then 15 s of 8
//     publishers (each transaction: one business row + one event) with one
//     handler consuming (its own transaction: inbox record + one effect row)
//     until the handler has drained everything (at most 20 s more).
//  3. Process CPU (getrusage) while a bus with 15 handlers on distinct topics
//     idles 10 s.
//
// "Stock" is the same tables, message format, handler and consume path
// (Bus.consume), publishing without the NOTIFY and subscribing with
// watermill-sql's default BackoffManager (1 s PollInterval) and resend
// interval, without the LISTEN connection: the difference between the two
// columns is the wake-up machinery.
//
// The third column is the shipped bus with Config.SeparateTransactions:
// each message applied in a transaction of its own instead of in the
// subscriber's batch transaction (batch.go).

//
// All phases share the server with whatever else runs on it: a transaction
// elsewhere on the cluster that holds an xid hides newer messages from every
// subscriber, so the run watches for long ones and reports them.

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

const (
	benchPublishers   = 8
	benchLoadDuration = 15 * time.Second
	benchDrainLimit   = 20 * time.Second // bound on waiting for the handler to catch up
	benchIdleHops     = 100
	benchStockHops    = 20
	benchIdleCPUFor   = 10 * time.Second
	benchIdleHandlers = 15
	pgbenchScale      = 8
	pgbenchClients    = 8
	pgbenchDuration   = 15 * time.Second
	pgbenchOneClient  = 5 * time.Second
	statsFlushWait    = 1200 * time.Millisecond // PostgreSQL backends flush their stats at most once a second
)

type benchTick struct {
	Key string `json:"key"`
}

func (benchTick) EventName() string { return "bench.tick.v1" }

// idleTopic[M] gives one distinct event type (and topic) per marker type M.
type idleTopic[M any] struct {
	Key string `json:"key"`
}

func (idleTopic[M]) EventName() string {
	return "bench.idle_" + strings.ToLower(reflect.TypeFor[M]().Name()) + ".v1"
}

type (
	i01 struct{}
	i02 struct{}
	i03 struct{}
	i04 struct{}
	i05 struct{}
	i06 struct{}
	i07 struct{}
	i08 struct{}
	i09 struct{}
	i10 struct{}
	i11 struct{}
	i12 struct{}
	i13 struct{}
	i14 struct{}
	i15 struct{}
)

func BenchmarkBus(b *testing.B) {
	ctx := context.Background()
	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	started := time.Now()
	r := benchReport{server: serverDescription(ctx, b, server)}
	watch := watchContention(ctx, b, server)

	// 1. The server's commit capacity.
	r.pg, err = runPgbench(ctx, b, server)
	if err != nil {
		b.Fatalf("pgbench: %v", err)
	}
	b.Logf("pgbench: %.0f tps (8 clients), %.0f tps (1 client); %v so far", r.pg.tps8, r.pg.tps1, time.Since(started).Round(time.Second))

	// 2. The bus, as shipped and as stock watermill-sql.
	specs := []variantSpec{
		{name: "modshop bus (NOTIFY + 5s safety poll)", ramp: true, idleHops: benchIdleHops, hopTimeout: 2 * time.Second},
		{name: "stock watermill-sql (1s poll)", stock: true, idleHops: benchStockHops, hopTimeout: 3 * time.Second},
		{name: "modshop bus, a transaction per message", separate: true, ramp: true, idleHops: benchIdleHops, hopTimeout: 2 * time.Second},
	}
	if benchFast() {
		specs = specs[:1] // the shipped bus: what issue 17's table reads
	}
	for _, spec := range specs {
		r.variants = append(r.variants, runVariant(ctx, b, spec, r.pg.tps8))
		b.Logf("%s: done, %v so far", spec.name, time.Since(started).Round(time.Second))
	}
	r.contention = watch.stop()

	// 3. Idle cost.
	r.variants[0].idleCPU = idleCPU(ctx, b, false)
	if len(r.variants) > 1 {
		r.variants[1].idleCPU = idleCPU(ctx, b, true)
	}
	r.total = time.Since(started)

	r.print(os.Stdout)
	bus := r.variants[0]
	if r.pg.tps8 > 0 {
		b.ReportMetric(bus.consumedRate/r.pg.tps8, "e2e/pgbench")
		if len(r.variants) == 3 {
			b.ReportMetric(r.variants[1].consumedRate/r.pg.tps8, "stock-e2e/pgbench")
			b.ReportMetric(r.variants[2].consumedRate/r.pg.tps8, "separate-e2e/pgbench")
		}
	}
	b.ReportMetric(r.pg.tps8, "pgbench-tps")
	b.ReportMetric(bus.consumedRate, "e2e-msg/s")
	b.ReportMetric(benchkit.Millis(bus.idle.P50), "hop-idle-p50-ms")
	b.ReportMetric(benchkit.Millis(bus.idle.P99), "hop-idle-p99-ms")
	b.ReportMetric(benchkit.Millis(bus.load.P50), "hop-load-p50-ms")
	if len(r.variants) > 1 {
		b.ReportMetric(benchkit.Millis(r.variants[1].idle.P50), "stock-hop-idle-p50-ms")
	}
	b.ReportMetric(bus.idleCPU, "idle-cpu-%")

	// The figures of issue 17's table (make bench; benchkit.Record).
	benchRecord(b, "bus.tpcb_tps", r.pg.tps8)
	benchRecord(b, "bus.idle_hop_p50_ms", benchkit.Millis(bus.idle.P50))
	if bus.rampRes.best.rate > 0 {
		benchRecord(b, "bus.sustained_per_s", bus.rampRes.best.rate)
	}
}

// benchFast is MODSHOP_BENCH_FAST (make bench-fast): the bus benchmarks
// measure only the shipped configuration, leaving out the variants they
// compare it with (stock watermill-sql, a transaction per message).
func benchFast() bool { return os.Getenv("MODSHOP_BENCH_FAST") != "" }

// benchRecord appends a figure of issue 17's table to the run's results
// file (benchkit.Record: only when MODSHOP_BENCH_RESULTS is set).
func benchRecord(b *testing.B, key string, value float64) {
	if err := benchkit.Record(key, value); err != nil {
		b.Errorf("record %s: %v", key, err)
	}
}

// contention samples the cluster for transactions that hold an xid for
// more than a second: while one is open, no subscriber on the server sees
// messages committed after it began, so the figures of this run would be
// about that transaction rather than about the bus.
type contention struct {
	mu     sync.Mutex
	worst  time.Duration
	what   string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchContention(ctx context.Context, b testing.TB, server string) *contention {
	c := &contention{done: make(chan struct{})}
	conn, err := sql.Open("pgx", server)
	if err != nil {
		b.Fatal(err)
	}
	conn.SetMaxOpenConns(1)
	ctx, c.cancel = context.WithCancel(ctx)
	go func() {
		defer close(c.done)
		defer conn.Close()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var age float64
			var what string
			err := conn.QueryRowContext(ctx, `
				SELECT extract(epoch FROM now() - xact_start),
				       datname || ' ' || coalesce(application_name, '') || ' (' || state || ')'
				  FROM pg_stat_activity
				 WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
				 ORDER BY xact_start LIMIT 1`).Scan(&age, &what)
			if err != nil {
				continue // none, or shutting down
			}
			if d := time.Duration(age * float64(time.Second)); d > time.Second {
				c.mu.Lock()
				if d > c.worst {
					c.worst, c.what = d, what
				}
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *contention) stop() string {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.worst == 0 {
		return "none over 1 s"
	}
	return fmt.Sprintf("WARNING: a transaction held an xid for %s: %s; subscriber figures are suspect", c.worst.Round(100*time.Millisecond), c.what)
}

// ---- pgbench ----

type pgbenchResult struct {
	tps8, tps1       float64
	latency8         float64 // ms, pgbench's "latency average"
	walSyncsPerTxn8  float64
	initTook, ranFor time.Duration
}

// runPgbench runs pgbench TPC-B on a scratch database of server, dropped
// right after (so that nothing vacuums its tables while the bus is
// measured): pgbenchClients clients for pgbenchDuration, then one client
// for pgbenchOneClient.
func runPgbench(ctx context.Context, b testing.TB, server string) (pgbenchResult, error) {
	var res pgbenchResult
	bin, err := benchkit.FindPgbench()
	if err != nil {
		return res, err
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return res, err
	}
	defer admin.Close()
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	name := "modshop_bench_pgbench_" + hex.EncodeToString(suffix[:])
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return res, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			b.Logf("drop scratch database %s: %v", name, err)
		}
	}()
	u, err := url.Parse(server)
	if err != nil {
		return res, err
	}
	u.Path = "/" + name
	pg := benchkit.Pgbench{Bin: bin, DatabaseURL: u.String()}

	t0 := time.Now()
	if err := pg.Init(ctx, pgbenchScale); err != nil {
		return res, err
	}
	res.initTook = time.Since(t0)

	syncs0 := walSyncs(ctx, admin)
	t0 = time.Now()
	run, err := pg.Run(ctx, benchkit.Load{Script: benchkit.TPCB, Clients: pgbenchClients, Threads: 2, Duration: pgbenchDuration})
	if err != nil {
		return res, err
	}
	res.ranFor = time.Since(t0)
	res.tps8, res.latency8 = run.TPS, run.LatencyMs
	time.Sleep(300 * time.Millisecond) // let the exiting backends report their WAL stats
	if syncs0 >= 0 {
		if syncs1 := walSyncs(ctx, admin); syncs1 >= 0 && res.tps8 > 0 {
			res.walSyncsPerTxn8 = float64(syncs1-syncs0) / (res.tps8 * pgbenchDuration.Seconds())
		}
	}

	run, err = pg.Run(ctx, benchkit.Load{Script: benchkit.TPCB, Clients: 1, Duration: pgbenchOneClient, NoVacuum: true})
	res.tps1 = run.TPS
	return res, err
}

// walSyncs is the cluster's count of WAL fsyncs (pg_stat_wal, PostgreSQL
// 14+), or -1 when unavailable.
func walSyncs(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) int64 {
	var n int64
	if err := q.QueryRowContext(ctx, `SELECT wal_sync FROM pg_stat_wal`).Scan(&n); err != nil {
		return -1
	}
	return n
}

func serverDescription(ctx context.Context, b testing.TB, server string) string {
	pg, err := benchkit.DescribeServer(ctx, server)
	if err != nil {
		b.Fatal(err)
	}
	return fmt.Sprintf("PostgreSQL %s at %s (synchronous_commit=%s, wal_sync_method=%s), %d CPUs, %s",
		pg.Version, pg.Host, pg.SynchronousCommit, pg.WALSyncMethod, runtime.NumCPU(), runtime.Version())
}

// ---- the bus under test ----

// benchEnv is one database with a module schema "benchmod" (business table
// "things", handler effects "effects") and the bus provisioned for it.
type benchEnv struct {
	url   string
	admin *sql.DB
	mod   *gorm.DB
	reg   *Registry
}

func newBenchEnv(b testing.TB) *benchEnv {
	b.Helper()
	ctx := context.Background()
	dbURL := testkit.NewDatabase(b)
	admin, err := db.Open(ctx, dbURL, 2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, "benchmod"); err != nil {
		b.Fatal(err)
	}
	if err := Provision(ctx, admin, "benchmod"); err != nil {
		b.Fatal(err)
	}
	// One pool for the module, as an application has: 8 publishers and the
	// handler share it.
	pool, err := db.OpenModule(ctx, dbURL, "benchmod", benchPublishers+4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pool.Close() })
	mod, err := db.Gorm(pool)
	if err != nil {
		b.Fatal(err)
	}
	for _, ddl := range []string{
		`CREATE TABLE things (key text PRIMARY KEY)`,
		`CREATE TABLE effects (key text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
	} {
		if err := mod.Exec(ddl).Error; err != nil {
			b.Fatal(err)
		}
	}
	reg := NewRegistry()
	reg.Register(benchTick{})
	return &benchEnv{url: dbURL, admin: admin, mod: mod, reg: reg}
}

func (e *benchEnv) newBus(b testing.TB, reg *Registry, cfg Config) *Bus {
	b.Helper()
	cfg.DatabaseURL = e.url
	bus, err := New(context.Background(), cfg, reg)
	if err != nil {
		b.Fatal(err)
	}
	return bus
}

func (e *benchEnv) consumer() Consumer { return Consumer{Module: "benchmod", DB: e.mod} }

// dbStats are this database's committed transactions and the cluster's WAL
// fsyncs.
func (e *benchEnv) dbStats(ctx context.Context) (commits, syncs int64) {
	if err := e.admin.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&commits); err != nil {
		commits = -1
	}
	return commits, walSyncs(ctx, e.admin)
}

// startStock runs b's handlers the way stock watermill-sql would: same
// tables, batch size, ack deadline and consume path, but subscribers built
// with no BackoffManager (so NewDefaultBackoffManager(1s, 1s)), default
// resend interval, and no LISTEN connection. Bus.Close stops it.
func startStock(ctx context.Context, b *Bus) error {
	return startCustom(ctx, b, false, func(h *handler) wmsql.SubscriberConfig {
		return wmsql.SubscriberConfig{
			ConsumerGroup:  h.name,
			SchemaAdapter:  b.schemaAdapter(),
			OffsetsAdapter: offsetsAdapter(),
		}
	})
}

// startCustom is Bus.Start with the subscriber configuration (and whether
// the LISTEN connection runs) chosen by the caller.
func startCustom(ctx context.Context, b *Bus, listen bool, config func(h *handler) wmsql.SubscriberConfig, consume ...func(h *handler) message.NoPublishHandlerFunc) error {
	b.mu.Lock()
	b.started = true
	handlers := make([]*handler, 0, len(b.handlers))
	for _, h := range b.handlers {
		handlers = append(handlers, h)
	}
	b.mu.Unlock()
	if err := ensureTables(ctx, b.db, b.registry.Names()); err != nil {
		return err
	}
	for _, h := range handlers {
		if err := h.consumer.DB.WithContext(ctx).Exec(inboxDDL).Error; err != nil {
			return err
		}
	}
	b.db.SetMaxOpenConns(max(b.cfg.MaxConns, 4+len(handlers)))
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: b.cfg.CloseTimeout}, watermill.NopLogger{})
	if err != nil {
		return err
	}
	for _, h := range handlers {
		sub, err := wmsql.NewSubscriber(wmsql.BeginnerFromStdSQL(b.db), config(h), nil)
		if err != nil {
			return err
		}
		fn := b.consume(h)
		if len(consume) > 0 {
			fn = consume[0](h)
		}
		router.AddConsumerHandler(h.name, h.topic, sub, fn)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.mu.Lock()
	b.router, b.stop = router, cancel
	b.mu.Unlock()
	if listen {
		b.done.Add(1)
		go func() {
			defer b.done.Done()
			b.wake.listen(runCtx, b.cfg.DatabaseURL, "", b.log, b.outage)
		}()
	}
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		if err := router.Run(runCtx); err != nil {
			b.log.Error("bench router stopped", "err", err)
		}
	}()
	select {
	case <-router.Running():
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("bench router did not start")
	}
}

// stockPublish is Bus.Publish without the NOTIFY: the plain watermill-sql
// publisher on the caller's transaction.
func stockPublish(b *Bus) func(ctx context.Context, tx *gorm.DB, ev Event) error {
	return func(ctx context.Context, tx *gorm.DB, ev Event) error {
		sqlTx, err := txOf(tx)
		if err != nil {
			return err
		}
		pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(sqlTx), wmsql.PublisherConfig{SchemaAdapter: b.schemaAdapter()}, nil)
		if err != nil {
			return err
		}
		msg, err := newMessage(ctx, ev, time.Now())
		if err != nil {
			return err
		}
		return pub.Publish(ev.EventName(), msg)
	}
}

// hopLog pairs each key's commit time (taken right after Commit returned)
// with its handler's entry time.
type hopLog struct {
	mu        sync.Mutex
	committed map[string]time.Time
	started   map[string]time.Time
	waiters   map[string]chan struct{}
	handled   atomic.Int64
}

func newHopLog() *hopLog {
	return &hopLog{committed: map[string]time.Time{}, started: map[string]time.Time{}, waiters: map[string]chan struct{}{}}
}

func (l *hopLog) handle(ctx context.Context, tx *gorm.DB, ev benchTick) error {
	now := time.Now()
	if err := tx.Exec(`INSERT INTO effects (key) VALUES (?)`, ev.Key).Error; err != nil {
		return err
	}
	l.started1(ev.Key, now)
	return nil
}

// started1 records the first handler entry for key.
func (l *hopLog) started1(key string, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, seen := l.started[key]; !seen {
		l.started[key] = at
		l.handled.Add(1)
		if ch := l.waiters[key]; ch != nil {
			close(ch)
			delete(l.waiters, key)
		}
	}
}

func (l *hopLog) commit(key string, at time.Time) {
	l.mu.Lock()
	l.committed[key] = at
	l.mu.Unlock()
}

func (l *hopLog) waiter(key string) <-chan struct{} {
	ch := make(chan struct{})
	l.mu.Lock()
	l.waiters[key] = ch
	l.mu.Unlock()
	return ch
}

// hops returns the hop of every key that was both committed and handled,
// how many of keys were not handled, and the last handler entry.
func (l *hopLog) hops(keys []string) (hops []time.Duration, missing int, lastStart time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		c, okc := l.committed[k]
		s, oks := l.started[k]
		if !okc || !oks {
			missing++
			continue
		}
		hops = append(hops, max(s.Sub(c), 0))
		if s.After(lastStart) {
			lastStart = s
		}
	}
	return hops, missing, lastStart
}

type publishFunc func(ctx context.Context, tx *gorm.DB, ev Event) error

// publishOne commits one business row and its event, and returns the time
// right after Commit returned. The bus wakes this process's subscribers
// just before that (after the database commit, inside Commit), so a hop
// can come out a few microseconds below zero; hops counts those as zero.
func publishOne(ctx context.Context, mod *gorm.DB, pub publishFunc, key string) (time.Time, error) {
	err := mod.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO things (key) VALUES (?)`, key).Error; err != nil {
			return err
		}
		return pub(ctx, tx, benchTick{Key: key})
	})
	return time.Now(), err
}

type variantSpec struct {
	name       string
	stock      bool // stock watermill-sql subscriber and publisher
	separate   bool // Config.SeparateTransactions: a transaction per message
	ramp       bool // also find the highest fixed publish rate the handler keeps up with
	idleHops   int
	hopTimeout time.Duration
}

type variantResult struct {
	variantSpec
	idle, load          benchkit.Summary
	published, consumed int64
	publishRate         float64
	consumedRate        float64 // end to end: consumed / (first publish to last handler entry)
	consumerAloneRate   float64 // after the publishers stopped
	handledDuringLoad   int64
	drainAfter          time.Duration // from the end of publishing to the last handler entry
	drained             bool
	pubTx               benchkit.Summary // publisher transaction, begin to commit returned
	pubErrors           int64
	commitsPerMsg       float64
	walSyncsPerMsg      float64
	idleCPU             float64 // % of one core, idleCPU phase
	// CPU per message over the load phase: this process (publishers, bus,
	// handler) and the rest of the machine (mostly PostgreSQL).
	goCPUPerMsg, restCPUPerMsg time.Duration
	rampRes                    rampResult
}

// rampResult is the highest fixed publish rate (open loop) that the
// handler kept up with.
type rampResult struct {
	steps []rampStep
	best  rampStep // zero: none kept up
}

type rampStep struct {
	rate      float64 // offered msg/s
	published int64
	backlog   int64         // published but not yet handled when the step ended
	late      time.Duration // the publishers' worst lag behind their schedule
	drain     time.Duration // from the step's end until everything was handled
	hops      benchkit.Summary
	ok        bool
}

const (
	rampStepFor    = 5 * time.Second
	rampFactor     = 1.15
	rampStartRatio = 0.3 // first rate, x pgbench TPC-B tps
)

// rampRate publishes at fixed rates (open loop: each message has its
// scheduled time, and the publishers' lag behind that schedule is
// measured, so a slow publisher cannot hide a slow handler), starting at
// rampStartRatio x tps and rising by rampFactor per step of rampStepFor. A
// step keeps up when, at its end, fewer than a quarter second's worth of
// messages wait, everything is handled within a second, and no publisher
// fell more than 100 ms behind. The first step that does not keep up is
// repeated once; the ramp ends at the second failure in a row.
func rampRate(ctx context.Context, b testing.TB, spec variantSpec, e *benchEnv, pub publishFunc, log *hopLog, tps float64) rampResult {
	var res rampResult
	res.steps, res.best = ramp(tps*rampStartRatio, 20, func(rate float64, n int) (rampStep, bool) {
		st := rampOnce(ctx, b, spec, e, pub, log, rate, n)
		return st, st.ok
	})
	return res
}

// ramp runs steps at rates rising by rampFactor from start, while they
// keep up; a step that does not is repeated once, the second in a row
// ends the ramp (as does the limit of steps). It returns every step and
// the last that kept up (the fastest).
func ramp[S any](start float64, limit int, step func(rate float64, n int) (S, bool)) (steps []S, best S) {
	rate := start
	failed := 0
	for n := 0; n < limit && failed < 2; n++ {
		st, ok := step(rate, n)
		steps = append(steps, st)
		if ok {
			failed = 0
			best = st
			rate *= rampFactor
		} else {
			failed++
		}
		time.Sleep(500 * time.Millisecond)
	}
	return steps, best
}

func rampOnce(ctx context.Context, b testing.TB, spec variantSpec, e *benchEnv, pub publishFunc, log *hopLog, rate float64, n int) rampStep {
	st := rampStep{rate: rate}
	keys, late := openLoop(ctx, rate, func(i int) (string, error) {
		key := fmt.Sprintf("ramp-%d-%07d", n, i)
		at, err := publishOne(ctx, e.mod, pub, key)
		if err != nil {
			b.Logf("%s: ramp publish: %v", spec.name, err)
			return "", err
		}
		log.commit(key, at)
		return key, nil
	})
	st.published = int64(len(keys))
	_, waiting, _ := log.hops(keys)
	st.backlog = int64(waiting)
	st.late = late
	end := time.Now()
	for waiting > 0 && time.Since(end) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
		_, waiting, _ = log.hops(keys)
	}
	st.drain = time.Since(end)
	hops, missing, _ := log.hops(keys)
	st.hops = benchkit.Summarize(hops, missing)
	st.ok = missing == 0 && float64(st.backlog) <= rate/4 && st.drain <= time.Second && st.late <= 100*time.Millisecond
	b.Logf("%s: ramp %.0f/s: backlog %d, drained in %s, publishers up to %s late, hop %s, kept up: %v",
		spec.name, rate, st.backlog, benchkit.FormatShort(st.drain), benchkit.FormatShort(st.late), fmtLat(st.hops), st.ok)
	return st
}

// openLoop runs one ramp step: rampStepFor of calls at a fixed rate from
// benchPublishers workers, each call at its scheduled time (open loop: a
// late publisher is measured, not excused). send makes call i and returns
// its key, or an error. It returns the keys sent and how far the
// publishers fell behind their schedule.
func openLoop(ctx context.Context, rate float64, send func(i int) (string, error)) (keys []string, late time.Duration) {
	var mu sync.Mutex
	res := benchkit.OpenLoop(ctx, rate, rampStepFor, benchPublishers, func(ctx context.Context, i int) error {
		key, err := send(i)
		if err != nil {
			return err
		}
		mu.Lock()
		keys = append(keys, key)
		mu.Unlock()
		return nil
	})
	return keys, res.MaxSendLag
}

func runVariant(ctx context.Context, b testing.TB, spec variantSpec, tps float64) variantResult {
	res := variantResult{variantSpec: spec}
	e := newBenchEnv(b)
	bus := e.newBus(b, e.reg, Config{SeparateTransactions: spec.separate})
	defer bus.Close()
	log := newHopLog()
	Handle(bus, "benchmod.record", e.consumer(), log.handle)
	var err error
	switch {
	case spec.stock:
		err = startStock(ctx, bus)
	default:
		err = bus.Start(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	pub := publishFunc(func(ctx context.Context, tx *gorm.DB, ev Event) error { return bus.Publish(ctx, tx, ev) })
	if spec.stock {
		pub = stockPublish(bus)
	}
	// Warm up: connections, plans, the subscriber's first polls.
	for i := range 3 {
		key := fmt.Sprintf("warm-%d", i)
		done := log.waiter(key)
		at, err := publishOne(ctx, e.mod, pub, key)
		if err != nil {
			b.Fatal(err)
		}
		log.commit(key, at)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			b.Logf("%s: warm-up message %s not handled within 10s; oldest writers on the cluster: %s", spec.name, key, openWriters(ctx, e.admin))
		}
	}
	time.Sleep(200 * time.Millisecond)

	// Idle hops: one message at a time, 50-100 ms apart.
	var keys []string
	timeouts := 0
idle:
	for i := range spec.idleHops {
		key := fmt.Sprintf("idle-%03d", i)
		keys = append(keys, key)
		done := log.waiter(key)
		at, err := publishOne(ctx, e.mod, pub, key)
		if err != nil {
			b.Fatal(err)
		}
		log.commit(key, at)
		select {
		case <-done:
		case <-time.After(spec.hopTimeout):
			b.Logf("%s: idle message %s not handled within %v; oldest writers on the cluster: %s", spec.name, key, spec.hopTimeout, openWriters(ctx, e.admin))
			if timeouts++; timeouts > 3 {
				b.Logf("%s: stopping the idle phase", spec.name)
				break idle
			}
		}
		time.Sleep(time.Duration(50+mrand.IntN(51)) * time.Millisecond)
	}
	hops, missing, _ := log.hops(keys)
	res.idle = benchkit.Summarize(hops, missing)
	time.Sleep(statsFlushWait)

	// Throughput: 8 publishers for benchLoadDuration, then drain.
	commits0, syncs0 := e.dbStats(ctx)
	cpu0 := benchkit.MarkCPU()
	before := log.handled.Load()
	var (
		mu      sync.Mutex
		allKeys []string
		txTimes []time.Duration
		wg      sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(benchLoadDuration)
	for p := range benchPublishers {
		wg.Go(func() {
			var myKeys []string
			var myTimes []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("load-%d-%06d", p, i)
				t0 := time.Now()
				at, err := publishOne(ctx, e.mod, pub, key)
				if err != nil {
					if atomic.AddInt64(&res.pubErrors, 1) == 1 {
						b.Logf("%s: publish: %v", spec.name, err)
					}
					time.Sleep(10 * time.Millisecond)
					continue
				}
				log.commit(key, at)
				myKeys = append(myKeys, key)
				myTimes = append(myTimes, at.Sub(t0))
			}
			mu.Lock()
			allKeys = append(allKeys, myKeys...)
			txTimes = append(txTimes, myTimes...)
			mu.Unlock()
		})
	}
	wg.Wait()
	pubEnd := time.Now()
	res.published = int64(len(allKeys))
	res.handledDuringLoad = log.handled.Load() - before
	res.publishRate = float64(res.published) / pubEnd.Sub(start).Seconds()
	res.pubTx = benchkit.Summarize(txTimes, 0)
	for log.handled.Load()-before < res.published && time.Since(pubEnd) < benchDrainLimit {
		time.Sleep(5 * time.Millisecond)
	}
	hops, missing, lastStart := log.hops(allKeys)
	res.load = benchkit.Summarize(hops, missing)
	res.consumed = int64(len(hops))
	res.drained = missing == 0
	end := lastStart
	if !res.drained || end.Before(pubEnd) {
		end = time.Now()
	}
	res.drainAfter = end.Sub(pubEnd)
	if res.consumed > 0 {
		cpu := cpu0.Since()
		res.goCPUPerMsg = cpu.ProcessTime / time.Duration(res.consumed)
		res.restCPUPerMsg = (cpu.MachineBusy - cpu.ProcessTime) / time.Duration(res.consumed)
	}
	res.consumedRate = float64(res.consumed) / end.Sub(start).Seconds()
	if d := end.Sub(pubEnd).Seconds(); d > 0.5 {
		res.consumerAloneRate = float64(res.consumed-res.handledDuringLoad) / d
	}
	time.Sleep(statsFlushWait)
	commits1, syncs1 := e.dbStats(ctx)
	if res.consumed > 0 && commits0 >= 0 && commits1 >= 0 {
		res.commitsPerMsg = float64(commits1-commits0) / float64(res.consumed)
	}
	if res.consumed > 0 && syncs0 >= 0 && syncs1 >= 0 {
		res.walSyncsPerMsg = float64(syncs1-syncs0) / float64(res.consumed)
	}
	if spec.ramp && tps > 0 {
		// The throughput phase may have left a backlog: let it drain (or
		// give up on it after a minute), then start from quiet.
		for n := log.handled.Load(); ; {
			time.Sleep(time.Second)
			m := log.handled.Load()
			if m == n || time.Since(end) > time.Minute {
				break
			}
			n = m
		}
		res.rampRes = rampRate(ctx, b, spec, e, pub, log, tps)
	}
	b.Logf("%s: idle hop %s; published %.0f/s, consumed %.0f/s (%d while publishing, drain %s); load hop %s",
		spec.name, fmtLat(res.idle), res.publishRate, res.consumedRate, res.handledDuringLoad, benchkit.FormatShort(res.drainAfter), fmtLat(res.load))
	return res
}

// openWriters lists the cluster's oldest transactions holding an xid: any
// of them keeps newer messages invisible to every subscriber.
func openWriters(ctx context.Context, admin *sql.DB) string {
	rows, err := admin.QueryContext(ctx, `
		SELECT datname || ' ' || coalesce(application_name, '') || ' ' || state || ' for ' || (now() - xact_start)::text
		  FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
		 ORDER BY xact_start LIMIT 3`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if rows.Scan(&s) == nil {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// ---- idle CPU ----

// idleCPU starts a bus with 15 handlers on distinct topics, lets it idle and
// returns the process's CPU time over the window as % of one core.
func idleCPU(ctx context.Context, b testing.TB, stock bool) float64 {
	e := newBenchEnv(b)
	reg := NewRegistry()
	bus := e.newBus(b, reg, Config{})
	defer bus.Close()
	c := e.consumer()
	addIdle[i01](bus, c)
	addIdle[i02](bus, c)
	addIdle[i03](bus, c)
	addIdle[i04](bus, c)
	addIdle[i05](bus, c)
	addIdle[i06](bus, c)
	addIdle[i07](bus, c)
	addIdle[i08](bus, c)
	addIdle[i09](bus, c)
	addIdle[i10](bus, c)
	addIdle[i11](bus, c)
	addIdle[i12](bus, c)
	addIdle[i13](bus, c)
	addIdle[i14](bus, c)
	addIdle[i15](bus, c)
	if n := len(reg.Names()); n != benchIdleHandlers {
		b.Fatalf("idle bus has %d topics, want %d", n, benchIdleHandlers)
	}
	var err error
	if stock {
		err = startStock(ctx, bus)
	} else {
		err = bus.Start(ctx)
	}
	if err != nil {
		b.Fatal(err)
	}
	// Earlier phases left a large heap: collect it and hand it back to the
	// OS now, or the background scavenger does it during the window.
	debug.FreeOSMemory()
	// Start-up polls done; for the bus, also the re-polls that chase the
	// wake-up every subscriber gets when the LISTEN connection comes up
	// (they go on for SafetyPoll).
	settle := time.Second
	if !stock {
		settle += bus.cfg.SafetyPoll
	}
	time.Sleep(settle)
	cpu := benchkit.MarkCPU()
	time.Sleep(benchIdleCPUFor)
	return 100 * cpu.Since().Process
}

func addIdle[M any](b *Bus, c Consumer) {
	Handle(b, "benchmod.idle_"+strings.ToLower(reflect.TypeFor[M]().Name()), c,
		func(ctx context.Context, tx *gorm.DB, ev idleTopic[M]) error { return nil })
}

// ---- the report ----

type benchReport struct {
	server     string
	pg         pgbenchResult
	variants   []variantResult
	contention string
	total      time.Duration
}

// fmtLat is "p50 / p99 (max, n)" of hops or chains, and how many were
// not handled.
func fmtLat(l benchkit.Summary) string {
	if l.N == 0 {
		if l.Missing == 0 {
			return "-"
		}
		return fmt.Sprintf("no samples (%d missing)", l.Missing)
	}
	s := fmt.Sprintf("%s / %s (max %s, n=%d)", benchkit.FormatShort(l.P50), benchkit.FormatShort(l.P99), benchkit.FormatShort(l.Max), l.N)
	if l.Missing > 0 {
		s += fmt.Sprintf(", %d NOT HANDLED", l.Missing)
	}
	return s
}

func (r *benchReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nBenchmarkBus: %s\n", r.server)
	fmt.Fprintf(w, "pgbench TPC-B scale %d, -c %d -j 2 -T %d: %.0f tps (latency avg %.2f ms, %.2f WAL fsyncs/txn); -c 1 -T %d: %.0f tps\n",
		pgbenchScale, pgbenchClients, int(pgbenchDuration/time.Second), r.pg.tps8, r.pg.latency8, r.pg.walSyncsPerTxn8,
		int(pgbenchOneClient/time.Second), r.pg.tps1)
	fmt.Fprintf(w, "load: %d publishers x %s, each tx = 1 business row + 1 event; 1 handler, each message in its own tx (inbox row + effect row)\n",
		benchPublishers, benchLoadDuration)
	fmt.Fprintf(w, "long transactions on the cluster during the run: %s\n\n", r.contention)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, cell func(v variantResult) string) {
		fmt.Fprint(tw, label)
		for _, v := range r.variants {
			fmt.Fprint(tw, "\t"+cell(v))
		}
		fmt.Fprintln(tw)
	}
	row("", func(v variantResult) string { return v.name })
	row("", func(v variantResult) string { return strings.Repeat("-", len(v.name)) })
	row("published msg/s", func(v variantResult) string { return fmt.Sprintf("%.0f (%d msgs)", v.publishRate, v.published) })
	row("consumed msg/s, end to end (msgs / first publish to drained)", func(v variantResult) string { return fmt.Sprintf("%.0f", v.consumedRate) })
	row(fmt.Sprintf("END-TO-END / pgbench TPC-B %d clients (target >= 0.70)", pgbenchClients), func(v variantResult) string {
		if r.pg.tps8 <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", v.consumedRate/r.pg.tps8)
	})
	row("  handled while publishing", func(v variantResult) string {
		return fmt.Sprintf("%d (%.0f/s)", v.handledDuringLoad, float64(v.handledDuringLoad)/benchLoadDuration.Seconds())
	})
	row("  drained after publishing stopped", func(v variantResult) string {
		if !v.drained {
			return fmt.Sprintf("NOT within %s (%d left)", benchkit.FormatShort(v.drainAfter), v.published-v.consumed)
		}
		return benchkit.FormatShort(v.drainAfter)
	})
	row("  handler alone (after publishing stopped), msg/s", func(v variantResult) string {
		if v.consumerAloneRate == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f", v.consumerAloneRate)
	})
	row("  publisher tx p50 / p99 (begin to commit returned)", func(v variantResult) string { return fmtLat(v.pubTx) })
	perMsg := func(v variantResult, x float64) string {
		if !v.drained {
			return "n/a (not drained)"
		}
		return fmt.Sprintf("%.2f", x)
	}
	row("  commits per message (this database, approx.)", func(v variantResult) string { return perMsg(v, v.commitsPerMsg) })
	row("  WAL fsyncs per message (whole cluster, approx.)", func(v variantResult) string { return perMsg(v, v.walSyncsPerMsg) })
	row("  CPU per message: this process / rest of machine", func(v variantResult) string {
		if v.goCPUPerMsg == 0 {
			return "-"
		}
		return fmt.Sprintf("%.3f ms / %.3f ms", benchkit.Millis(v.goCPUPerMsg), benchkit.Millis(v.restCPUPerMsg))
	})
	row("  publish errors", func(v variantResult) string { return strconv.FormatInt(v.pubErrors, 10) })
	row("SUSTAINED: highest fixed publish rate kept up with, msg/s", func(v variantResult) string {
		if !v.ramp {
			return "-"
		}
		if v.rampRes.best.rate == 0 {
			return "none of the rates tried"
		}
		return fmt.Sprintf("%.0f", v.rampRes.best.rate)
	})
	row(fmt.Sprintf("SUSTAINED / pgbench TPC-B %d clients (target >= 0.70)", pgbenchClients), func(v variantResult) string {
		if !v.ramp || r.pg.tps8 <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", v.rampRes.best.rate/r.pg.tps8)
	})
	row("  at that rate: hop p50 / p99; backlog at end; publishers' worst lag", func(v variantResult) string {
		if !v.ramp || v.rampRes.best.rate == 0 {
			return "-"
		}
		return fmt.Sprintf("%s; %d; %s", fmtLat(v.rampRes.best.hops), v.rampRes.best.backlog, benchkit.FormatShort(v.rampRes.best.late))
	})
	row("HOP IDLE p50 / p99 (target p50 < 10 ms)", func(v variantResult) string { return fmtLat(v.idle) })
	row("hop under load p50 / p99 (every message of the run)", func(v variantResult) string { return fmtLat(v.load) })
	row(fmt.Sprintf("IDLE CPU, %d handlers, %s, %% of one core", benchIdleHandlers, benchIdleCPUFor), func(v variantResult) string {
		if v.idleCPU == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f%%", v.idleCPU)
	})
	tw.Flush()
	for _, v := range r.variants {
		if len(v.rampRes.steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nfixed-rate ramp, %s (open loop, %s steps, x%.2f; kept up = backlog <= 0.25 s of messages at the step's end, drained within 1 s, publishers <= 100 ms late):\n",
			v.name, rampStepFor, rampFactor)
		for _, st := range v.rampRes.steps {
			fmt.Fprintf(w, "  %5.0f/s = %.2f x pgbench: backlog %d, drained in %s, publishers up to %s late, hop %s: %s\n",
				st.rate, st.rate/r.pg.tps8, st.backlog, benchkit.FormatShort(st.drain), benchkit.FormatShort(st.late), fmtLat(st.hops), map[bool]string{true: "kept up", false: "BEHIND"}[st.ok])
		}
	}
	fmt.Fprintf(w, "\ntotal %s\n\n", r.total.Round(time.Second))
}
