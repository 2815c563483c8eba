package bench_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/benchkit"
	"github.com/modshop/modshop/platform/testkit"
)

const (
	topologyProducts  = 10
	topologyStock     = 1000000 // the most a product may be created with
	topologyRampStart = 30.0    // orders/s of the warm-up and the ramp's first step
	topologyWarmup    = 3 * time.Second
	topologyHold      = 20 * time.Second
	// topologyHoldShare of the lowest capacity is the rate every topology
	// is held at: one rate for all, so that their latencies compare, and
	// far enough below the slowest one's capacity that it keeps up.
	topologyHoldShare = 0.7
)

// topology is one way of running the shop, and what was measured of it.
type topology struct {
	name, key string // for the table, and for the metrics
	opts      apptest.SplitOptions

	shop      *apptest.Split
	orders    *sql.DB // the order module's database
	place     func(*batch) benchkit.Op
	firstStep []string

	ramp      []rampResult
	capacity  float64
	saturated bool
	hold      *phase
}

// BenchmarkTopologies runs the saga against the shop in its three
// topologies, one after the other in one run, each as separate processes of
// the real binary with the load generator in this process:
//
//  1. one binary: `modshop serve` with every module, reached directly;
//  2. four processes (`modshop serve --modules=<m>`) on one database with
//     the PostgreSQL bus, `modshop gateway` in front;
//  3. four processes on four databases with RabbitMQ between them
//     (MODSHOP_BUS_TRANSPORT=rabbitmq), the gateway in front.
//
// First pgbench TPC-B (scale 8, -c 8 -j 2, 15 s) on a scratch database of
// the same server. Then for each topology: start it (production pool
// size), create 50 customers and 10 products with plenty of stock through
// the API, place one order through the checking client, warm up for 3 s,
// and find its capacity with BenchmarkOrders' ramp (3 s open-loop steps,
// each 1.3 times faster, from 30 orders/s); then stop its processes, so
// that an idle topology neither holds the server's connections nor takes
// CPU from the next. Then each in turn is started again, warmed up and
// held for 20 s at one rate for all, 0.7 times the lowest capacity, and
// its invariants are checked. Placed→confirmed runs from orders.created_at
// to the payment_succeeded step of orders.order_timeline, read from the
// order module's own database (with a database per module, not through the
// postgres_fdw one: the same rows, without the foreign hop during the
// load). The one binary is reached directly, the split ones through
// modshop gateway, as each would run. It takes about 4 minutes whatever
// b.N is:
//
//	go test -run '^$' -bench BenchmarkTopologies -benchtime 1x -timeout 15m ./app/bench/
func BenchmarkTopologies(b *testing.B) {
	if testing.Short() {
		b.Skip("load benchmark: skipped with -short")
	}
	ctx := b.Context()
	started := time.Now()
	elapsed := func() time.Duration { return time.Since(started).Round(time.Second) }

	server, err := testkit.ServerURL()
	if err != nil {
		b.Fatal(err)
	}
	bin, err := benchkit.FindPgbench()
	if err != nil {
		b.Fatalf("pgbench is needed for the ratios: %v", err)
	}
	pg := benchkit.Pgbench{Bin: bin, DatabaseURL: testkit.NewDatabase(b)}
	if err := pg.Init(ctx, tpcbScale); err != nil {
		b.Fatal(err)
	}
	tpcb, err := pg.Run(ctx, tpcbLoad)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("pgbench TPC-B: %.0f tps (%v so far)", tpcb.TPS, elapsed())
	postmaster := postmasterOf(b, pg.DatabaseURL) // to tell PostgreSQL's CPU from the rest

	env := map[string]string{
		"MODSHOP_DB_MAX_CONNS": strconv.Itoa(app.DefaultConfig().DBMaxConns),
		// All the load comes from 127.0.0.1.
		"MODSHOP_LOGIN_ATTEMPTS_PER_CLIENT":  "1000000000",
		"MODSHOP_LOGIN_ATTEMPTS_PER_ACCOUNT": "1000000000",
		// It registers its customers through the API, from there too.
		"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": "1000000000",
	}
	topologies := []*topology{
		{name: "one binary", key: "one", opts: apptest.SplitOptions{OneProcess: true, Env: env}},
		{name: "4 processes, 1 database, PostgreSQL bus", key: "split_pg", opts: apptest.SplitOptions{Env: env}},
		{name: "4 processes, 4 databases, RabbitMQ", key: "split_rabbitmq", opts: apptest.SplitOptions{DatabasePerModule: true, Env: env}},
	}
	client := benchkit.NewHTTPClient(openLoopInFlight)
	defer client.CloseIdleConnections()
	seed := 0
	newBatch := func(name string) *batch {
		seed += 1 << 20
		return &batch{name: name, seed: seed}
	}

	// 1. Each topology's capacity.
	for _, t := range topologies {
		t.start(b, client)
		warmUp(b, t, "warmup", topologyRampStart, newBatch)
		t.ramp, t.capacity, t.saturated, err = rampToCapacity(ctx, t.orders, topologyRampStart, t.place, newBatch)
		if err != nil {
			b.Fatalf("%s: %v", t.name, err)
		}
		if _, err := waitFinished(ctx, t.orders, drainLimit); err != nil {
			b.Fatalf("%s, after the ramp: %v", t.name, err)
		}
		t.stopProcesses(b)
		b.Logf("%s: capacity %.0f orders/s (%v so far)", t.name, t.capacity, elapsed())
	}

	// 2. One rate for all, then the invariants of each after its load.
	rate := topologies[0].capacity
	for _, t := range topologies {
		rate = min(rate, t.capacity)
	}
	rate *= topologyHoldShare
	for _, t := range topologies {
		t.restartProcesses(b)
		warmUp(b, t, "rewarm", rate, newBatch)
		t.hold = holdRate(b, t, rate, postmaster, newBatch)
		b.Logf("%s: %.1f orders/s offered, %.1f confirmed/s (%v so far)", t.name, rate, t.hold.confirmedRate(), elapsed())
		t.shop.CheckInvariants(b)
		t.stopProcesses(b)
	}

	printTopologies(os.Stdout, server, tpcb, topologies, rate, time.Since(started))
	b.ReportMetric(0, "ns/op") // one run of minutes: meaningless per op
	b.ReportMetric(tpcb.TPS, "pgbench_tpcb_tps")
	for _, t := range topologies {
		b.ReportMetric(t.capacity, t.key+"_capacity/s")
		b.ReportMetric(t.hold.confirmedRate(), t.key+"_confirmed/s")
		b.ReportMetric(benchkit.Millis(t.hold.saga.percentile(t.hold.saga.total, 99)), t.key+"_confirm_p99_ms")
	}
	if b.Failed() {
		fmt.Println("\nINVARIANT CHECK OR LOAD FAILED: see the errors above")
	} else {
		fmt.Println("\ninvariants: all hold in each topology after its load (apptest.Split.CheckInvariants)")
	}
}

// start starts the topology's processes and gives it a catalog and
// customers through the API; its orders will be placed with client.
func (t *topology) start(b *testing.B, client *http.Client) {
	b.Helper()
	from := time.Now()
	t.shop = apptest.StartSplit(b, t.opts)
	up := time.Since(from)
	orders, err := sql.Open("pgx", t.shop.ModuleDatabases["order"])
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { orders.Close() })
	orders.SetMaxOpenConns(2)
	t.orders = orders

	api := t.shop.Client(b)
	_, admin := t.shop.Admin(b)
	products := make([]string, topologyProducts)
	for i := range products {
		r := api.Do("POST", "/api/v1/products", map[string]any{
			"sku": fmt.Sprintf("TOPO-%02d", i), "name": fmt.Sprintf("Topology lamp %d", i),
			"price": fmt.Sprintf("%d.50", 3+i), "stock": topologyStock,
		}, testkit.Bearer(admin))
		if r.Status != http.StatusCreated {
			b.Fatalf("%s: create a product: %d %s", t.name, r.Status, r.Body)
		}
		var p struct{ ID string }
		r.Decode(b, &p)
		products[i] = p.ID
	}
	tokens := make([]string, benchUsers)
	for i := range tokens {
		_, tokens[i] = t.shop.Customer(b)
	}
	t.place = placeOrders(client, t.shop.URL, tokens, products)
	t.firstStep = checkOneOrder(b, api, t.orders, tokens[0], products)
	if b.Failed() {
		b.FailNow() // an answer off the document: measuring it would mislead
	}
	b.Logf("%s: up in %v, ready with %d products and %d customers in %v", t.name,
		up.Round(time.Millisecond), len(products), len(tokens), time.Since(from).Round(time.Millisecond))
}

func (t *topology) stopProcesses(b *testing.B) {
	b.Helper()
	for _, p := range t.shop.Processes() {
		t.shop.Stop(b, p)
	}
}

func (t *topology) restartProcesses(b *testing.B) {
	b.Helper()
	for _, p := range t.shop.Processes() {
		t.shop.Restart(b, p)
	}
}

// warmUp places orders at rate for topologyWarmup, not measured, and waits
// until they are final: pools filled, code paths and caches warm. name
// must differ from every other batch's: it makes the Idempotency-Keys.
func warmUp(b *testing.B, t *topology, name string, rate float64, newBatch func(string) *batch) {
	b.Helper()
	res := benchkit.OpenLoop(b.Context(), rate, topologyWarmup, openLoopInFlight, t.place(newBatch(name)))
	checkFailures(b, t.name+" "+name, res)
	if _, err := waitFinished(b.Context(), t.orders, drainLimit); err != nil {
		b.Fatalf("%s, after the warm-up: %v", t.name, err)
	}
}

// holdRate places orders at rate for topologyHold and reads what became of
// them once they are all final.
func holdRate(b *testing.B, t *topology, rate float64, postmaster int, newBatch func(string) *batch) *phase {
	b.Helper()
	ctx := b.Context()
	p := &phase{name: t.name, rate: rate, length: topologyHold, batch: newBatch("hold")}
	cpu, procs := benchkit.MarkCPU(), benchkit.MarkProcesses(postmaster)
	p.start = time.Now()
	p.res = benchkit.OpenLoop(ctx, rate, p.length, openLoopInFlight, t.place(p.batch))
	p.end = time.Now()
	p.cpu, p.split = cpu.Since(), procs.Since()
	p.backlogAtEnd, _ = unfinished(ctx, t.orders)
	var err error
	if p.drain, err = waitFinished(ctx, t.orders, drainLimit); err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	p.saga = readSaga(ctx, b, t.orders, p.batch.ids, p.start, p.start.Add(p.length))
	checkFailures(b, t.name, p.res)
	return p
}

// postmasterOf is the process id of the PostgreSQL server that holds the
// database at url, or 0 when it does not run on this machine.
func postmasterOf(b *testing.B, url string) int {
	b.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var backend int
	if err := db.QueryRowContext(b.Context(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		b.Fatal(err)
	}
	return benchkit.Postmaster(backend)
}

func printTopologies(w io.Writer, server string, tpcb benchkit.PgbenchResult, ts []*topology, rate float64, took time.Duration) {
	fmt.Fprintf(w, "\nmodshop in three topologies, one after the other, each as processes of the real binary (%s, %d CPUs, %s)\n",
		runtime.Version(), runtime.NumCPU(), time.Now().Format(time.DateOnly))
	pg, _ := benchkit.DescribeServer(context.Background(), server)
	fmt.Fprintf(w, "PostgreSQL %s on %s; %d customers, %d products, %d-connection module pools; %v in all\n",
		pg.Version, pg.Host, benchUsers, topologyProducts, app.DefaultConfig().DBMaxConns, took.Round(time.Second))
	fmt.Fprintf(w, "pgbench TPC-B (scale %d, %d clients, %d threads, %v), same server, same run: %.0f tps\n\n",
		tpcbScale, tpcbLoad.Clients, tpcbLoad.Threads, tpcbLoad.Duration, tpcb.TPS)

	for _, t := range ts {
		steps := make([]string, len(t.ramp))
		for i, r := range t.ramp {
			mark := ""
			if !r.ok {
				mark = " over"
			}
			steps[i] = fmt.Sprintf("%.0f→%.0f%s", r.rate, r.confirmedRate, mark)
		}
		fmt.Fprintf(w, "ramp of %s (offered→confirmed/s): %s\n", t.name, strings.Join(steps, ", "))
	}
	fmt.Fprintln(w)

	one := ts[0].capacity
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintf(tw, "topology\tcapacity/s\t÷ TPC-B\t÷ one binary\tconfirmed/s at %.1f/s\t÷ TPC-B\tHTTP p50\tHTTP p99\tplaced→confirmed p50\tp99\t(→reserved p99\treserved→confirmed p99)\tfailed\tnot confirmed\t\n", rate)
	for _, t := range ts {
		h := t.hold
		fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.2f\t%.1f\t%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n",
			t.name, t.capacity, t.capacity/tpcb.TPS, t.capacity/one,
			h.confirmedRate(), h.confirmedRate()/tpcb.TPS,
			benchkit.FormatMs(h.res.Percentile(50)), benchkit.FormatMs(h.res.Percentile(99)),
			benchkit.FormatMs(h.saga.percentile(h.saga.total, 50)), benchkit.FormatMs(h.saga.percentile(h.saga.total, 99)),
			benchkit.FormatMs(h.saga.percentile(h.saga.reserve, 99)), benchkit.FormatMs(h.saga.percentile(h.saga.pay, 99)),
			h.res.Failed, h.saga.placed-h.saga.confirmed)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nwhere the CPU went while each was held at %.1f/s (cores of %d; /proc):\n", rate, runtime.NumCPU())
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, "topology\tmachine\tms/order\tshop processes\tPostgreSQL\tRabbitMQ\tload generator\tinterrupts\tother\t")
	for _, t := range ts {
		h, sp := t.hold, t.hold.split
		if h.cpu.Machine < 0 || h.confirmedRate() == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t-\t\n", t.name)
			continue
		}
		busy := h.cpu.Machine * float64(runtime.NumCPU())
		cells := []string{"-", "-", "-", "-", "-", "-"}
		if sp.OK {
			cells = []string{fmt.Sprintf("%.2f", sp.Children), fmt.Sprintf("%.2f", sp.Server), fmt.Sprintf("%.2f", sp.Broker),
				fmt.Sprintf("%.2f", sp.Self), fmt.Sprintf("%.2f", sp.IRQ), fmt.Sprintf("%.2f", sp.Other)}
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%s\t\n", t.name, busy, busy*1000/h.confirmedRate(), strings.Join(cells, "\t"))
	}
	tw.Flush()

	fmt.Fprintf(w, `
capacity: what the saga confirmed per second in the ramp's second step over capacity in a row (open loop,
%v steps x%.1f from %.0f/s; over: backlog > %v of orders or HTTP p99 > %v). Then each topology, restarted
and warmed up, held %v at %.2f x the lowest capacity. HTTP from each request's intended send time
(no coordinated omission); the one binary is reached directly, the split ones through modshop gateway.
placed→confirmed: the payment_succeeded step of orders.order_timeline minus orders.created_at;
→reserved runs to its stock_reserved step, reserved→confirmed from there.
CPU: ms/order is the whole machine's busy time over the hold ÷ confirmed orders; shop processes are
modshop serve and gateway; PostgreSQL is the whole server (other databases' backends too); interrupts
are the kernel's irq and softirq time (loopback traffic); other is everything else (other programs,
processes that ended meanwhile).
`, rampStep, rampFactor, topologyRampStart, rampBacklog, rampHTTPLimit, topologyHold, topologyHoldShare)
	fmt.Fprintf(w, "timeline of the check order: %s\n", strings.Join(ts[0].firstStep, " → "))
	for _, t := range ts {
		h := t.hold
		if !t.saturated {
			fmt.Fprintf(w, "NOTE %s: the ramp never fell behind twice running; capacity is its last good step's rate\n", t.name)
		}
		if h.split.OK && h.split.Other >= 0.2 {
			fmt.Fprintf(w, "WARNING %s: other processes used %.2f cores while it was held (most: %s): its figures are low\n", t.name, h.split.Other, h.split.TopOthers)
		}
		if !h.keptUp() {
			fmt.Fprintf(w, "NOTE %s did not keep up at %.1f/s: %d placed, %d confirmed, %d unfinished at the end, drained in %v; statuses %v\n",
				t.name, rate, h.saga.placed, h.saga.confirmed, h.backlogAtEnd, h.drain.Round(time.Millisecond), h.saga.statuses)
		}
	}
}
