package order_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

type paymentsJSON struct {
	Items []struct {
		ID      string `json:"id"`
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
		Amount  string `json:"amount"`
		Refunds []struct {
			Status string `json:"status"`
			Amount string `json:"amount"`
		} `json:"refunds"`
	} `json:"items"`
}

func (w *world) payments(t *testing.T, token, orderID string) (int, paymentsJSON) {
	t.Helper()
	r := w.shop.API.Do("GET", "/api/v1/payments?order_id="+orderID, nil, testkit.Bearer(token))
	var p paymentsJSON
	if r.Status == http.StatusOK {
		r.Decode(t, &p)
	}
	return r.Status, p
}

func TestSaga_HappyPathConfirmsWithOneCapture(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"BEANS": 10, "FILTER": 10})
	_, o := w.place(t, w.customer, "pm_card_visa", map[string]int{"BEANS": 2, "FILTER": 1})
	done := w.waitStatus(t, o.ID, "confirmed")
	w.shop.CheckInvariants(t)
	for _, step := range []string{"placed", "stock_reserved", "payment_requested", "payment_succeeded"} {
		if !hasStep(done, step) {
			t.Errorf("timeline lacks %s: %+v", step, done.Timeline)
		}
	}
	if done.Total == nil || done.PaymentState != "captured" {
		t.Fatalf("confirmed order: total %v, payment %s", done.Total, done.PaymentState)
	}
	status, p := w.payments(t, w.customer, o.ID)
	if status != http.StatusOK || len(p.Items) != 1 || p.Items[0].Status != "captured" || p.Items[0].Amount != *done.Total {
		t.Fatalf("payments of the order: %d %+v, want one captured payment of %s", status, p, *done.Total)
	}
	if w.available(t, "BEANS") != 8 || w.available(t, "FILTER") != 9 {
		t.Fatal("stock was not sold")
	}
	_, other := w.shop.Customer(t)
	if status, _ := w.payments(t, other, o.ID); status != http.StatusNotFound {
		t.Fatalf("someone else's payments: %d, want 404", status)
	}
}

func TestSaga_DeclinedCardCancelsAndStockComesBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"KETTLE": 4})
	_, o := w.place(t, w.customer, "pm_card_chargeDeclined", map[string]int{"KETTLE": 2})
	done := w.waitStatus(t, o.ID, "cancelled")
	w.shop.CheckInvariants(t)
	if done.CancelReason != "payment_failed" || done.PaymentState != "failed" {
		t.Fatalf("declined order: reason %q, payment %q", done.CancelReason, done.PaymentState)
	}
	if got := w.available(t, "KETTLE"); got != 4 {
		t.Fatalf("available %d after a declined card, want 4", got)
	}
}

// TestSaga_PaymentPastDeadlineCancelsAndTheLateChargeIsRefunded: the card
// answers after the order's payment deadline; the order is cancelled, the
// stock comes back, and the charge that arrives afterwards is refunded.
func TestSaga_PaymentPastDeadlineCancelsAndTheLateChargeIsRefunded(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) { c.PaymentTimeout = 300 * time.Millisecond })
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	w := &world{shop: shop, admin: admin, customer: customer, products: map[string]string{}}
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "SLOW", "name": "Slow lamp", "price": "30.00", "stock": 3}, testkit.Bearer(admin))
	var p struct{ ID string }
	r.Decode(t, &p)
	w.products["SLOW"] = p.ID

	_, o := w.place(t, customer, "pm_card_delayed", map[string]int{"SLOW": 1})
	cancelled := w.waitStatus(t, o.ID, "cancelled")
	if cancelled.CancelReason != "payment_timeout" {
		t.Fatalf("cancel reason %q, want payment_timeout", cancelled.CancelReason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for w.order(t, admin, o.ID).PaymentState != "refunded" {
		if time.Now().After(deadline) {
			t.Fatalf("the late charge was not refunded: %+v", w.order(t, admin, o.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	shop.CheckInvariants(t)
	_, pays := w.payments(t, customer, o.ID)
	if len(pays.Items) != 1 || pays.Items[0].Status != "captured" || len(pays.Items[0].Refunds) != 1 || pays.Items[0].Refunds[0].Amount != pays.Items[0].Amount {
		t.Fatalf("payments after a late charge: %+v, want one capture refunded in full", pays)
	}
	if got := w.available(t, "SLOW"); got != 3 {
		t.Fatalf("available %d, want 3", got)
	}
}

func TestIdempotencyKey_ConcurrentRetriesChargeOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"ONCE": 10})
	key := testkit.Header("Idempotency-Key", "pay-once-1")
	var wg sync.WaitGroup
	ids := make(chan string, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, o := w.place(t, w.customer, "pm_card_visa", map[string]int{"ONCE": 1}, key)
			ids <- o.ID
		}()
	}
	wg.Wait()
	close(ids)
	id := <-ids
	for other := range ids {
		if other != id {
			t.Fatalf("two orders for one key: %s and %s", id, other)
		}
	}
	w.waitStatus(t, id, "confirmed")
	w.shop.CheckInvariants(t)
	_, p := w.payments(t, w.customer, id)
	if len(p.Items) != 1 {
		t.Fatalf("%d payments for one order, want 1", len(p.Items))
	}
	if got := w.available(t, "ONCE"); got != 9 {
		t.Fatalf("available %d, want 9: one order, one unit", got)
	}
}
