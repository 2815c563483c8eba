package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// world is a product schema, migrated, with a real bus to publish on.
type world struct {
	svc *Service
	db  *gorm.DB
	bus *bus.Bus
	url string
}

func newWorld(t *testing.T, cfg Config) *world {
	t.Helper()
	ctx := context.Background()
	url := testkit.NewDatabase(t)
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, "products"); err != nil {
		t.Fatal(err)
	}
	if err := bus.Provision(ctx, admin, "products"); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, url, "products", 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	files, _ := migrations.For("product")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := db.Migrate(ctx, pool, "products", files, log); err != nil {
		t.Fatal(err)
	}
	gdb, err := db.Gorm(pool)
	if err != nil {
		t.Fatal(err)
	}
	reg := bus.NewRegistry()
	reg.Register(events.ProductCreated{}, events.ProductUpdated{}, events.StockReserved{}, events.StockRejected{},
		events.StockReleased{}, events.StockCommitted{}, orderevents.OrderPlaced{})
	b, err := bus.New(ctx, bus.Config{DatabaseURL: url}, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &world{svc: NewService(gdb, b, log, cfg), db: gdb, bus: b, url: url}
}

func (w *world) product(t *testing.T, sku string, stock int) string {
	t.Helper()
	p, err := w.svc.CreateProduct(context.Background(), NewProduct{SKU: sku, Name: "Product " + sku, Price: "9.99", Stock: &stock})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func (w *world) reserve(order orderevents.OrderPlaced) error {
	return w.db.Transaction(func(tx *gorm.DB) error { return w.svc.Reserve(context.Background(), tx, order) })
}

func (w *world) commit(orderID string) error {
	return w.db.Transaction(func(tx *gorm.DB) error { return w.svc.Commit(context.Background(), tx, orderID) })
}

func (w *world) release(orderID string) error {
	return w.db.Transaction(func(tx *gorm.DB) error { return w.svc.Release(context.Background(), tx, orderID, "cancelled") })
}

func (w *world) stock(t *testing.T, id string) (onHand, reserved int) {
	t.Helper()
	var inv []Inventory
	if err := w.db.Raw(`SELECT on_hand, reserved FROM inventory WHERE product_id = ?`, id).Scan(&inv).Error; err != nil || len(inv) != 1 {
		t.Fatalf("inventory of %s: %v", id, err)
	}
	return inv[0].OnHand, inv[0].Reserved
}

func (w *world) state(t *testing.T, orderID string) string {
	t.Helper()
	var s []string
	if err := w.db.Raw(`SELECT state FROM reservations WHERE order_id = ?`, orderID).Scan(&s).Error; err != nil {
		t.Fatal(err)
	}
	if len(s) == 0 {
		return "none"
	}
	return s[0]
}

// checkInvariants: stock never negative; reserved equals the sum of active
// reservations; on hand equals initial + restocks + corrections - sold.
func (w *world) checkInvariants(t *testing.T) {
	t.Helper()
	var bad []struct {
		ProductID string
		OnHand    int
		Reserved  int
		Active    int
		Ledger    int
	}
	err := w.db.Raw(`
		SELECT i.product_id, i.on_hand, i.reserved,
		       coalesce((SELECT sum(l.quantity) FROM reservation_lines l JOIN reservations r USING (order_id)
		                  WHERE r.state = 'active' AND l.product_id = i.product_id), 0) AS active,
		       coalesce((SELECT sum(delta) FROM stock_movements m WHERE m.product_id = i.product_id), 0) AS ledger
		  FROM inventory i`).Scan(&bad).Error
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range bad {
		if r.OnHand < 0 || r.Reserved < 0 || r.Reserved > r.OnHand || r.Reserved != r.Active || r.OnHand != r.Ledger {
			t.Errorf("invariant broken for %s: on hand %d, reserved %d, active reservations %d, ledger %d",
				r.ProductID, r.OnHand, r.Reserved, r.Active, r.Ledger)
		}
	}
}

func order(lines ...orderevents.OrderLine) orderevents.OrderPlaced {
	return orderevents.OrderPlaced{OrderID: uuid.NewString(), UserID: uuid.NewString(), Lines: lines, PlacedAt: time.Now()}
}

func TestReserve_200ConcurrentOneUnitOrdersAgainstStock50(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	pid := w.product(t, "HOT-1", 50)
	const orders = 200
	ids := make([]string, orders)
	errs := make(chan error, orders)
	var wg sync.WaitGroup
	for i := range orders {
		o := order(orderevents.OrderLine{ProductID: pid, Quantity: 1})
		ids[i] = o.OrderID
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.reserve(o)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a reservation failed instead of being decided: %v", err)
		}
	}
	counts := map[string]int{}
	for _, id := range ids {
		counts[w.state(t, id)]++
	}
	if counts["active"] != 50 || counts["rejected"] != 150 {
		t.Fatalf("reservations by state: %v, want 50 active and 150 rejected", counts)
	}
	if onHand, reserved := w.stock(t, pid); onHand != 50 || reserved != 50 {
		t.Fatalf("stock: on hand %d, reserved %d; want 50 and 50", onHand, reserved)
	}
	w.checkInvariants(t)
}

func TestReserve_MultiLineOrdersSharingHotProductsNeverDeadlockOrOversell(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	hot := []string{w.product(t, "HOT-A", 40), w.product(t, "HOT-B", 40), w.product(t, "HOT-C", 40)}
	const orders = 120
	errs := make(chan error, orders)
	var wg sync.WaitGroup
	for i := range orders {
		// Two or three lines, the hot products in a different order each time.
		perm := rand.Perm(len(hot))
		lines := []orderevents.OrderLine{}
		for _, j := range perm[:2+i%2] {
			lines = append(lines, orderevents.OrderLine{ProductID: hot[j], Quantity: 1 + i%3})
		}
		o := order(lines...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.reserve(o)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("an order surfaced an error (deadlock?) instead of being reserved or rejected: %v", err)
		}
	}
	for _, id := range hot {
		onHand, reserved := w.stock(t, id)
		if reserved > onHand || reserved == 0 {
			t.Errorf("product %s: on hand %d, reserved %d", id, onHand, reserved)
		}
	}
	w.checkInvariants(t)
}

func TestReserve_AllOrNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	plenty, scarce := w.product(t, "PLENTY", 100), w.product(t, "SCARCE", 1)
	o := order(orderevents.OrderLine{ProductID: plenty, Quantity: 5}, orderevents.OrderLine{ProductID: scarce, Quantity: 2})
	if err := w.reserve(o); err != nil {
		t.Fatal(err)
	}
	if s := w.state(t, o.OrderID); s != "rejected" {
		t.Fatalf("state %s, want rejected", s)
	}
	if _, reserved := w.stock(t, plenty); reserved != 0 {
		t.Fatalf("a rejected order kept %d units of the line that was available", reserved)
	}
	bad := order(orderevents.OrderLine{ProductID: plenty, Quantity: 0}, orderevents.OrderLine{ProductID: "not-a-uuid", Quantity: 1})
	if err := w.reserve(bad); err != nil {
		t.Fatal(err)
	}
	if s := w.state(t, bad.OrderID); s != "rejected" {
		t.Fatalf("an order with invalid lines: state %s, want rejected", s)
	}
	w.checkInvariants(t)
}

func TestReservation_StateMachineIsIdempotentPerOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	pid := w.product(t, "SM-1", 10)
	line := orderevents.OrderLine{ProductID: pid, Quantity: 3}

	// Placed twice (two deliveries): reserved once.
	o := order(line)
	for range 2 {
		if err := w.reserve(o); err != nil {
			t.Fatal(err)
		}
	}
	if _, reserved := w.stock(t, pid); reserved != 3 {
		t.Fatalf("reserved %d after a duplicate order.placed, want 3", reserved)
	}
	// Committed twice, then released: the sale stands.
	for range 2 {
		if err := w.commit(o.OrderID); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.release(o.OrderID); err != nil {
		t.Fatal(err)
	}
	if onHand, reserved := w.stock(t, pid); onHand != 7 || reserved != 0 {
		t.Fatalf("after commit, commit, release: on hand %d reserved %d, want 7 and 0", onHand, reserved)
	}

	// Released, then committed: the release stands.
	o2 := order(line)
	if err := w.reserve(o2); err != nil {
		t.Fatal(err)
	}
	if err := w.release(o2.OrderID); err != nil {
		t.Fatal(err)
	}
	if err := w.commit(o2.OrderID); err != nil {
		t.Fatal(err)
	}
	if onHand, reserved := w.stock(t, pid); onHand != 7 || reserved != 0 {
		t.Fatalf("after release then commit: on hand %d reserved %d, want 7 and 0", onHand, reserved)
	}

	// Cancelled before it was placed (events on different topics may cross):
	// the late order.placed reserves nothing.
	o3 := order(line)
	if err := w.release(o3.OrderID); err != nil {
		t.Fatal(err)
	}
	if err := w.reserve(o3); err != nil {
		t.Fatal(err)
	}
	if s := w.state(t, o3.OrderID); s != "released" {
		t.Fatalf("late order.placed after cancel: state %s, want released", s)
	}
	if _, reserved := w.stock(t, pid); reserved != 0 {
		t.Fatalf("late order.placed after cancel reserved %d", reserved)
	}
	w.checkInvariants(t)
}

func TestReservation_ExpiredOnesAreReleased(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{ReservationTTL: time.Millisecond})
	pid := w.product(t, "EXP-1", 5)
	o := order(orderevents.OrderLine{ProductID: pid, Quantity: 2})
	if err := w.reserve(o); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	n, err := w.svc.ReleaseExpired(context.Background(), 10)
	if err != nil || n != 1 {
		t.Fatalf("released %d (%v), want 1", n, err)
	}
	if s := w.state(t, o.OrderID); s != "released" {
		t.Fatalf("state %s, want released", s)
	}
	if _, reserved := w.stock(t, pid); reserved != 0 {
		t.Fatalf("reserved %d after expiry", reserved)
	}
	w.checkInvariants(t)
}

// An outage longer than a reservation's lifetime lets the expiry release
// the stock of an order that then confirms (the customer has paid): the
// sale goes ahead from free stock, and never below it. (The chaos suite
// found a confirmed order without its committed reservation after the
// database was down 30 s; a confirmation after the expiry sold nothing.)
func TestReservation_AConfirmationAfterTheExpirySellsFromFreeStockOnly(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{ReservationTTL: time.Millisecond})
	pid := w.product(t, "EXP-2", 5)
	o := order(orderevents.OrderLine{ProductID: pid, Quantity: 2})
	gone := order(orderevents.OrderLine{ProductID: pid, Quantity: 2})
	for _, x := range []orderevents.OrderPlaced{o, gone} {
		if err := w.reserve(x); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond)
	if n, err := w.svc.ReleaseExpired(context.Background(), 10); err != nil || n != 2 {
		t.Fatalf("released %d (%v), want 2", n, err)
	}

	if err := w.commit(o.OrderID); err != nil {
		t.Fatal(err)
	}
	if s := w.state(t, o.OrderID); s != "committed" {
		t.Fatalf("a confirmation after the expiry: reservation %s, want committed", s)
	}
	if onHand, reserved := w.stock(t, pid); onHand != 3 || reserved != 0 {
		t.Fatalf("on hand %d, reserved %d after a late confirmation, want 3 and 0", onHand, reserved)
	}
	// The rest of the stock goes to a new order; the other expired one
	// then confirms: nothing is left for it, and nothing is sold below zero.
	if err := w.reserve(order(orderevents.OrderLine{ProductID: pid, Quantity: 3})); err != nil {
		t.Fatal(err)
	}
	if err := w.commit(gone.OrderID); err != nil {
		t.Fatal(err)
	}
	if s := w.state(t, gone.OrderID); s != "released" {
		t.Fatalf("a confirmation after the expiry with the stock sold: reservation %s, want released", s)
	}
	if onHand, reserved := w.stock(t, pid); onHand != 3 || reserved != 3 {
		t.Fatalf("on hand %d, reserved %d, want 3 and 3", onHand, reserved)
	}
	// A second delivery of the confirmation changes nothing.
	if err := w.commit(o.OrderID); err != nil {
		t.Fatal(err)
	}
	if onHand, _ := w.stock(t, pid); onHand != 3 {
		t.Fatalf("on hand %d after the confirmation came again, want 3", onHand)
	}
	w.checkInvariants(t)
}

func TestInventory_CheckConstraintsBackTheCode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	pid := w.product(t, "CHK-1", 3)
	for _, q := range []string{
		`UPDATE inventory SET reserved = on_hand + 1 WHERE product_id = ?`,
		`UPDATE inventory SET on_hand = -1 WHERE product_id = ?`,
		`UPDATE inventory SET reserved = -1 WHERE product_id = ?`,
	} {
		if err := w.db.Exec(q, pid).Error; db.SQLState(err) != "23514" {
			t.Errorf("%s: %v, want a CHECK violation", q, err)
		}
	}
	// Staff cannot correct stock below what is reserved.
	if err := w.reserve(order(orderevents.OrderLine{ProductID: pid, Quantity: 2})); err != nil {
		t.Fatal(err)
	}
	_, err := w.svc.ChangeStock(context.Background(), pid, StockChange{Delta: -2})
	var p interface{ Error() string }
	if err == nil || !errors.As(err, &p) {
		t.Fatalf("correcting below reserved: %v, want a conflict", err)
	}
	if onHand, _ := w.stock(t, pid); onHand != 3 {
		t.Fatalf("on hand %d after a refused correction", onHand)
	}
	w.checkInvariants(t)
}

func TestReserve_PublishesAuthoritativeNamesAndPrices(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	pid := w.product(t, "PUB-1", 5)
	o := order(orderevents.OrderLine{ProductID: pid, Quantity: 2})
	if err := w.reserve(o); err != nil {
		t.Fatal(err)
	}
	var payloads []string
	if err := w.db.Raw(`SELECT payload::text FROM bus."m_stock.reserved.v1"`).Scan(&payloads).Error; err == nil {
		t.Fatalf("the product role could read the bus table: %v", payloads)
	}
	admin, err := db.Open(context.Background(), w.url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var payload string
	if err := admin.QueryRow(`SELECT payload::text FROM bus."m_stock.reserved.v1"`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var ev events.StockReserved
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		t.Fatal(err)
	}
	want := []events.ReservedLine{{ProductID: pid, Name: "Product PUB-1", UnitPrice: "9.99", Quantity: 2}}
	if ev.OrderID != o.OrderID || fmt.Sprint(ev.Lines) != fmt.Sprint(want) || ev.ExpiresAt.IsZero() {
		t.Fatalf("stock.reserved = %+v, want lines %+v", ev, want)
	}
}
