package bus

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
)

// The six events of an order's saga, shaped like the shop's (the platform
// may not import the modules): placed → stock reserved → payment requested
// → payment succeeded → order confirmed → stock committed.
type (
	sagaLine struct {
		ProductID string `json:"product_id"`
		Name      string `json:"name,omitempty"`
		UnitPrice string `json:"unit_price,omitempty"`
		Quantity  int    `json:"quantity"`
	}
	sagaOrderPlaced struct {
		OrderID  string     `json:"order_id"`
		UserID   string     `json:"user_id"`
		Lines    []sagaLine `json:"lines"`
		PlacedAt time.Time  `json:"placed_at"`
	}
	sagaStockReserved struct {
		OrderID   string     `json:"order_id"`
		Lines     []sagaLine `json:"lines"`
		ExpiresAt time.Time  `json:"expires_at"`
	}
	sagaPaymentRequested struct {
		OrderID       string    `json:"order_id"`
		UserID        string    `json:"user_id"`
		Amount        string    `json:"amount"`
		PaymentMethod string    `json:"payment_method"`
		RequestedAt   time.Time `json:"requested_at"`
	}
	sagaPaymentSucceeded struct {
		OrderID    string    `json:"order_id"`
		PaymentID  string    `json:"payment_id"`
		Amount     string    `json:"amount"`
		CapturedAt time.Time `json:"captured_at"`
	}
	sagaOrderConfirmed struct {
		OrderID string `json:"order_id"`
	}
	sagaStockCommitted struct {
		OrderID string `json:"order_id"`
	}
)

func (sagaOrderPlaced) EventName() string      { return "order.placed.v1" }
func (sagaStockReserved) EventName() string    { return "stock.reserved.v1" }
func (sagaPaymentRequested) EventName() string { return "payment.requested.v1" }
func (sagaPaymentSucceeded) EventName() string { return "payment.succeeded.v1" }
func (sagaOrderConfirmed) EventName() string   { return "order.confirmed.v1" }
func (sagaStockCommitted) EventName() string   { return "stock.committed.v1" }

// BenchmarkRetention runs 10,000 orders' sagas (MODSHOP_BENCH_ORDERS) through
// the bus twice, without pruning and with it, and reports the size of the
// bus schema's tables; then how fast a prune deletes what the first run
// left, and what publishers manage meanwhile.
//
//	go test -run '^$' -bench BenchmarkRetention -benchtime 1x -timeout 30m ./platform/bus/
func BenchmarkRetention(b *testing.B) {
	orders := 10000
	if n, err := strconv.Atoi(os.Getenv("MODSHOP_BENCH_ORDERS")); err == nil && n > 0 {
		orders = n
	}
	for range b.N {
		without := runSagas(b, orders, Config{PruneInterval: noPruning}, false)
		with := runSagas(b, orders, Config{Retention: 5 * time.Second, PruneInterval: time.Second}, true)
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "\nbus tables after %d orders (6 events each)\trows in messages tables\tmessages tables\toffsets and bus's own\tinboxes (module schema)\n", orders)
		for _, r := range append(without.sizes, with.sizes...) {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", r.what, r.rows, mib(r.messages), mib(r.other), mib(r.inbox))
		}
		w.Flush()
		fmt.Printf("\none prune of the first run's %d messages: %s (%.0f messages/s, batches of %d)\n",
			without.prune.deleted, without.prune.took.Round(time.Millisecond), float64(without.prune.deleted)/without.prune.took.Seconds(), 1000)
		fmt.Printf("8 publishers: %.0f msg/s before the prune, %.0f msg/s during it (none blocked: slower only by the CPU the prune takes)\n",
			without.prune.rateBefore, without.prune.rateDuring)
	}
}

type sizeRow struct {
	what                   string
	rows                   int64
	messages, other, inbox int64
}

type sagaRun struct {
	sizes []sizeRow
	prune pruneTiming
}

// pruneTiming is how long one prune took, and the publishers' rate before
// and during it.
type pruneTiming struct {
	deleted                int64
	took                   time.Duration
	rateBefore, rateDuring float64
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// runSagas runs orders sagas on a fresh database. Without pruning, in one
// go; with it, in five waves, each followed by a wait for the retention to
// pass, a prune and a VACUUM (what autovacuum does within a minute), so that
// the later waves reuse the space the earlier ones left.
func runSagas(b *testing.B, orders int, cfg Config, pruning bool) sagaRun {
	b.Helper()
	ctx := context.Background()
	e := newBenchEnv(b)
	reg := NewRegistry()
	reg.Register(sagaOrderPlaced{}, sagaStockReserved{}, sagaPaymentRequested{}, sagaPaymentSucceeded{}, sagaOrderConfirmed{}, sagaStockCommitted{})
	bus := e.newBus(b, reg, cfg)
	b.Cleanup(func() { bus.Close() })
	handleSagas(bus, e.consumer())
	if err := bus.Start(ctx); err != nil {
		b.Fatal(err)
	}

	var run sagaRun
	label := "without pruning"
	waves := 1
	if pruning {
		label = fmt.Sprintf("pruning every %s, retention %s", cfg.PruneInterval, cfg.Retention)
		waves = 5
	}
	for wave := 1; wave <= waves; wave++ {
		e.placeOrders(b, bus, orders/waves, orders*wave/waves)
		done := orders * wave / waves
		if !pruning {
			run.sizes = append(run.sizes, e.sizes(b, bus, fmt.Sprintf("%s: after %d orders", label, done)))
			continue
		}
		run.sizes = append(run.sizes, e.sizes(b, bus, fmt.Sprintf("%s: after %d orders, as the last ends", label, done)))
		time.Sleep(cfg.Retention + time.Second)
		if _, _, err := bus.pruneMessages(ctx); err != nil {
			b.Fatal(err)
		}
		e.vacuum(b, bus)
		run.sizes = append(run.sizes, e.sizes(b, bus, fmt.Sprintf("%s: after %d orders, pruned, VACUUM", label, done)))
	}
	if !pruning {
		run.prune = e.timePrune(b, bus)
	}
	return run
}

// handleSagas subscribes the saga's six handlers: each publishes the next
// event, the last records the order done.
func handleSagas(bus *Bus, c Consumer) {
	Handle(bus, "product.reserve_stock", c, func(ctx context.Context, tx *gorm.DB, ev sagaOrderPlaced) error {
		lines := make([]sagaLine, len(ev.Lines))
		for i, l := range ev.Lines {
			lines[i] = sagaLine{ProductID: l.ProductID, Name: "Glowworm paper lantern", UnitPrice: "9.50", Quantity: l.Quantity}
		}
		return bus.Publish(ctx, tx, sagaStockReserved{OrderID: ev.OrderID, Lines: lines, ExpiresAt: time.Now().Add(15 * time.Minute)})
	})
	Handle(bus, "order.on_stock_reserved", c, func(ctx context.Context, tx *gorm.DB, ev sagaStockReserved) error {
		return bus.Publish(ctx, tx, sagaPaymentRequested{OrderID: ev.OrderID, UserID: uuid.NewString(), Amount: "28.50", PaymentMethod: "pm_card_visa", RequestedAt: time.Now()})
	})
	Handle(bus, "payment.charge", c, func(ctx context.Context, tx *gorm.DB, ev sagaPaymentRequested) error {
		return bus.Publish(ctx, tx, sagaPaymentSucceeded{OrderID: ev.OrderID, PaymentID: uuid.NewString(), Amount: ev.Amount, CapturedAt: time.Now()})
	})
	Handle(bus, "order.on_payment_succeeded", c, func(ctx context.Context, tx *gorm.DB, ev sagaPaymentSucceeded) error {
		return bus.Publish(ctx, tx, sagaOrderConfirmed{OrderID: ev.OrderID})
	})
	Handle(bus, "product.commit_stock", c, func(ctx context.Context, tx *gorm.DB, ev sagaOrderConfirmed) error {
		return bus.Publish(ctx, tx, sagaStockCommitted{OrderID: ev.OrderID})
	})
	Handle(bus, "order.on_stock_committed", c, func(ctx context.Context, tx *gorm.DB, ev sagaStockCommitted) error {
		return tx.Exec(`INSERT INTO effects (key) VALUES (?)`, ev.OrderID).Error
	})
}

// placeOrders places n orders from 8 publishers and waits until total
// sagas have ended.
func (e *benchEnv) placeOrders(b *testing.B, bus *Bus, n, total int) {
	b.Helper()
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range benchPublishers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				id := uuid.NewString()
				err := e.mod.Transaction(func(tx *gorm.DB) error {
					if err := tx.Exec(`INSERT INTO things (key) VALUES (?)`, id).Error; err != nil {
						return err
					}
					return bus.Publish(ctx, tx, sagaOrderPlaced{OrderID: id, UserID: uuid.NewString(), PlacedAt: time.Now(),
						Lines: []sagaLine{{ProductID: uuid.NewString(), Quantity: 2}, {ProductID: uuid.NewString(), Quantity: 1}}})
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var done int
		if err := e.mod.Raw(`SELECT count(*) FROM effects`).Scan(&done).Error; err != nil {
			b.Fatal(err)
		}
		if done >= total {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sagas ended in 10 minutes", done, total)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sizes measures the bus schema's tables and the module's inbox.
func (e *benchEnv) sizes(b *testing.B, bus *Bus, what string) sizeRow {
	b.Helper()
	ctx := context.Background()
	r := sizeRow{what: what}
	err := e.admin.QueryRowContext(ctx, `
		SELECT coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname LIKE 'm\_%'), 0),
		       coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relname NOT LIKE 'm\_%'), 0),
		       pg_total_relation_size('benchmod.processed_messages')
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'bus' AND c.relkind = 'r'`).Scan(&r.messages, &r.other, &r.inbox)
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range bus.topics() {
		var n int64
		if err := e.admin.QueryRowContext(ctx, `SELECT count(*) FROM `+messagesTable(t)).Scan(&n); err != nil {
			b.Fatal(err)
		}
		r.rows += n
	}
	return r
}

// vacuum runs VACUUM on the bus tables (autovacuum would, later).
func (e *benchEnv) vacuum(b *testing.B, bus *Bus) {
	b.Helper()
	for _, t := range bus.topics() {
		for _, table := range []string{messagesTable(t), offsetsTable(t)} {
			if _, err := e.admin.Exec(`VACUUM ` + table); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// timePrune prunes everything the groups have passed (a second bus with a
// retention of a nanosecond) while 8 publishers publish, and compares
// their rate with the seconds before.
func (e *benchEnv) timePrune(b *testing.B, bus *Bus) (out pruneTiming) {
	b.Helper()
	ctx := context.Background()
	pruner := e.newBus(b, bus.registry, Config{Retention: time.Nanosecond, PruneInterval: noPruning})
	b.Cleanup(func() { pruner.Close() })
	publishFor := func(stop <-chan struct{}) float64 {
		var n atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range benchPublishers {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					err := e.mod.Transaction(func(tx *gorm.DB) error {
						return pruner.Publish(ctx, tx, sagaOrderConfirmed{OrderID: uuid.NewString()})
					})
					if err != nil {
						b.Error(err)
						return
					}
					n.Add(1)
				}
			})
		}
		wg.Wait()
		return float64(n.Load()) / time.Since(start).Seconds()
	}
	stop := make(chan struct{})
	time.AfterFunc(3*time.Second, func() { close(stop) })
	out.rateBefore = publishFor(stop)

	stop = make(chan struct{})
	rate := make(chan float64)
	go func() { rate <- publishFor(stop) }()
	start := time.Now()
	pruned, _, err := pruner.pruneMessages(ctx)
	out.took = time.Since(start)
	close(stop)
	out.rateDuring = <-rate
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range pruned {
		out.deleted += n
	}
	return out
}
