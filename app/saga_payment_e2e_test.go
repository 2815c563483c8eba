package app_test

import (
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
)

// TestSaga_PaymentPastDeadlineCancelsAndTheLateChargeIsRefunded: the card
// answers after the order's payment deadline; the order is cancelled, the
// stock comes back, and the charge that arrives afterwards is refunded.
func TestSaga_PaymentPastDeadlineCancelsAndTheLateChargeIsRefunded(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) { c.PaymentTimeout = 300 * time.Millisecond })
	w := &world{World: sagasuite.NewWorld(t, shop, map[string]int{"SLOW": 3}), shop: shop}
	admin, customer := w.Admin, w.Customer

	_, o := w.Place(t, customer, "pm_card_delayed", map[string]int{"SLOW": 1})
	cancelled := w.WaitStatus(t, o.ID, "cancelled")
	if cancelled.CancelReason != "payment_timeout" {
		t.Fatalf("cancel reason %q, want payment_timeout", cancelled.CancelReason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for w.Order(t, admin, o.ID).PaymentState != "refunded" {
		if time.Now().After(deadline) {
			t.Fatalf("the late charge was not refunded: %+v", w.Order(t, admin, o.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	shop.CheckInvariants(t)
	_, pays := w.Payments(t, customer, o.ID)
	if len(pays.Items) != 1 || pays.Items[0].Status != "refunded" || len(pays.Items[0].Refunds) != 1 || pays.Items[0].Refunds[0].Amount != pays.Items[0].Amount {
		t.Fatalf("payments after a late charge: %+v, want one capture refunded in full (status refunded)", pays)
	}
	if got := w.Available(t, "SLOW"); got != 3 {
		t.Fatalf("available %d, want 3", got)
	}
}
