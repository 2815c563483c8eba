package orders

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/auth"
)

// TestCancelOverdue_TwoReplicasCancelEachOrderOnce: every replica of the
// shop runs the deadline sweep over the same orders. Two services sweeping
// the same overdue orders at once cancel each once (one order.cancelled,
// one stock_timeout step), whichever gets it: each cancellation locks the
// order (lockOrder), checks the deadline again and moves the state only
// forward, so the second finds nothing left to do.
func TestCancelOverdue_TwoReplicasCancelEachOrderOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	gdb := openOrders(t)
	pub := &recorder{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{StockTimeout: time.Millisecond}
	replicas := []*Service{NewService(gdb, pub, log, cfg), NewService(gdb, pub, log, cfg)}

	const orders = 30
	customer := auth.Identity{UserID: uuid.NewString()}
	ids := map[string]bool{}
	for range orders {
		o, err := replicas[0].Place(ctx, customer, PlaceOrder{Items: []OrderLine{{ProductID: uuid.NewString(), Quantity: 1}}, PaymentMethod: "pm_card_visa"}, "")
		if err != nil {
			t.Fatal(err)
		}
		ids[o.ID] = true
	}
	time.Sleep(5 * time.Millisecond) // every stock deadline passes

	var cancelled [2]int
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			cancelled[i], errs[i] = s.CancelOverdue(ctx, 100)
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("sweeps: %v, %v", errs[0], errs[1])
	}
	t.Logf("cancelled by the first replica %d, by the second %d", cancelled[0], cancelled[1])
	if cancelled[0]+cancelled[1] != orders {
		t.Errorf("cancelled %d + %d, want %d in all: each once", cancelled[0], cancelled[1], orders)
	}
	perOrder := map[string]int{}
	pub.mu.Lock()
	for _, ev := range pub.events {
		if c, ok := ev.(events.OrderCancelled); ok {
			perOrder[c.OrderID]++
		}
	}
	pub.mu.Unlock()
	for id := range ids {
		if perOrder[id] != 1 {
			t.Errorf("order %s: %d order.cancelled events, want 1", id, perOrder[id])
		}
		o, err := replicas[1].Get(ctx, customer, id)
		if err != nil {
			t.Fatal(err)
		}
		steps := 0
		for _, s := range o.Timeline {
			if s.Step == "stock_timeout" {
				steps++
			}
		}
		if o.Status != Cancelled || steps != 1 {
			t.Errorf("order %s: %s with %d stock_timeout steps, want cancelled with one", id, o.Status, steps)
		}
	}
}
