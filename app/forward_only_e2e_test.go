package app_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
)

// TestSaga_EventsForAPassedStateChangeNothing: once a late charge has been
// refunded, the saga's events arriving again under new message ids (so
// that no inbox recognises them) change nothing: not the order's status,
// payment state, reason or timeline, and no second refund is asked for.
// The reported case was a second payment.succeeded moving payment_state
// from refunded back to refund_requested, with a timeline entry.
func TestSaga_EventsForAPassedStateChangeNothing(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) { c.PaymentTimeout = 300 * time.Millisecond })
	w := &world{World: sagasuite.NewWorld(t, shop, map[string]int{"LATE": 3}), shop: shop}

	_, placed := w.Place(t, w.Customer, "pm_card_delayed", map[string]int{"LATE": 1})
	w.WaitStatus(t, placed.ID, "cancelled")
	deadline := time.Now().Add(60 * time.Second)
	for w.Order(t, w.Admin, placed.ID).PaymentState != "refunded" {
		if time.Now().After(deadline) {
			t.Fatalf("the late charge was not refunded: %+v", w.Order(t, w.Admin, placed.ID))
		}
		time.Sleep(25 * time.Millisecond)
	}
	shop.CheckInvariants(t)
	before := w.Order(t, w.Admin, placed.ID)
	_, pays := w.Payments(t, w.Customer, placed.ID)
	if len(pays.Items) != 1 || len(pays.Items[0].Refunds) != 1 {
		t.Fatalf("payments of the refunded order: %+v", pays)
	}
	pay := pays.Items[0]

	now := time.Now().UTC()
	again := []bus.Event{
		paymentevents.PaymentSucceeded{OrderID: placed.ID, PaymentID: pay.ID, Amount: pay.Amount, CapturedAt: now},
		paymentevents.PaymentRefunded{OrderID: placed.ID, PaymentID: pay.ID, RefundID: "00000000-0000-7000-8000-000000000001", Amount: pay.Amount, RefundedAt: now},
		paymentevents.PaymentFailed{OrderID: placed.ID, PaymentID: pay.ID, Reason: "declined", FailedAt: now},
		productevents.StockReserved{OrderID: placed.ID, ExpiresAt: now.Add(time.Minute), Lines: []productevents.ReservedLine{
			{ProductID: w.Products["LATE"], Name: "Thing LATE", UnitPrice: "1.00", Quantity: 1}}},
		productevents.StockRejected{OrderID: placed.ID, Short: []productevents.ShortLine{
			{ProductID: w.Products["LATE"], Requested: 1, Reason: "insufficient_stock"}}},
	}
	for _, ev := range again {
		if err := shop.Publish(context.Background(), ev); err != nil {
			t.Fatalf("publish %s: %v", ev.EventName(), err)
		}
	}
	shop.CheckInvariants(t) // waits until every handler has taken them

	after := w.Order(t, w.Admin, placed.ID)
	if after.Status != before.Status || after.PaymentState != "refunded" || after.CancelReason != before.CancelReason || text(after.Total) != text(before.Total) {
		t.Errorf("order moved: %s/%s (%q, total %s), was %s/%s (%q, total %s)", after.Status, after.PaymentState, after.CancelReason, text(after.Total),
			before.Status, before.PaymentState, before.CancelReason, text(before.Total))
	}
	if !slices.Equal(steps(after), steps(before)) {
		t.Errorf("timeline changed:\n  before %v\n  after  %v", steps(before), steps(after))
	}
	if _, p := w.Payments(t, w.Customer, placed.ID); len(p.Items) != 1 || len(p.Items[0].Refunds) != 1 {
		t.Errorf("payments after the repeats: %+v, want the one payment refunded once", p)
	}
	w.noDeadLetters(t)
}

// steps are the steps of an order's timeline, in order.
func steps(o orderJSON) []string {
	out := make([]string, len(o.Timeline))
	for i, s := range o.Timeline {
		out[i] = s.Step
	}
	return out
}
