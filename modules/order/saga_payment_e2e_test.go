package order_test

import (
	"net/http"
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
