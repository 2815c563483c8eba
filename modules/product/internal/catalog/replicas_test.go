package catalog

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/db"
)

// TestReleaseExpired_TwoReplicasReleaseEachReservationOnce: every replica
// of the shop runs the expiry sweep over the same reservations, at the same
// moments. Two services on pools of their own (two processes) sweep the
// same expired reservations at once: each is released once (one
// stock.released, its stock back once), whichever sweep gets it. The
// guard is finish's UPDATE … WHERE state = 'active': the second sweep
// waits for the first's row lock, then finds the row no longer active.
func TestReleaseExpired_TwoReplicasReleaseEachReservationOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := Config{ReservationTTL: time.Millisecond}
	w := newWorld(t, cfg)
	pool, err := db.OpenModule(ctx, w.url, "products", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pool.Close() })
	gdb, err := db.Gorm(pool)
	if err != nil {
		t.Fatal(err)
	}
	second := NewService(gdb, w.bus, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)

	products := []string{w.product(t, "TWO-1", 100), w.product(t, "TWO-2", 100), w.product(t, "TWO-3", 100)}
	const orders = 30
	for i := range orders {
		// Lines over shared products, so that the releases contend for
		// the same stock rows too.
		o := order(orderevents.OrderLine{ProductID: products[i%3], Quantity: 1}, orderevents.OrderLine{ProductID: products[(i+1)%3], Quantity: 2})
		if err := w.reserve(o); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(5 * time.Millisecond) // every reservation expires

	var released [2]int
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, svc := range []*Service{w.svc, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			released[i], errs[i] = svc.ReleaseExpired(ctx, 100)
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("sweeps: %v, %v", errs[0], errs[1])
	}
	t.Logf("released by the first replica %d, by the second %d", released[0], released[1])
	if released[0]+released[1] != orders {
		t.Errorf("released %d + %d, want %d in all: each once", released[0], released[1], orders)
	}
	for _, p := range products {
		if _, reserved := w.stock(t, p); reserved != 0 {
			t.Errorf("product %s: %d still reserved", p, reserved)
		}
	}
	admin, err := db.Open(ctx, w.url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var events, distinct int
	if err := admin.QueryRow(`SELECT count(*), count(DISTINCT payload->>'order_id') FROM bus."m_stock.released.v1"`).Scan(&events, &distinct); err != nil {
		t.Fatal(err)
	}
	if events != orders || distinct != orders {
		t.Errorf("%d stock.released events for %d orders, want one for each of %d", events, distinct, orders)
	}
	w.checkInvariants(t)
}
