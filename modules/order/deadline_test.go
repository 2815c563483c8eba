package order_test

import (
	"testing"
	"time"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// TestStockTimeout_AnOrderNeverReservedIsCancelled: when no stock.reserved
// or stock.rejected comes before the order's stock deadline
// (MODSHOP_STOCK_TIMEOUT), the module's deadline runner cancels it as
// stock_timeout and publishes order.cancelled, which releases whatever the
// product module may still hold; no payment is asked for.
func TestStockTimeout_AnOrderNeverReservedIsCancelled(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{StockTimeout: 300 * time.Millisecond, DeadlineInterval: 50 * time.Millisecond})
	_, ann := o.Auth.Customer()
	placed := o.placed(t, ann)
	if placed.Status != "pending" {
		t.Fatalf("a new order is %s, want pending", placed.Status)
	}

	ev := moduletest.WaitFor(t, o.Events, "order.cancelled of "+placed.ID, func(ev events.OrderCancelled) bool { return ev.OrderID == placed.ID })
	if ev.Reason != "stock_timeout" {
		t.Errorf("order.cancelled reason %q, want stock_timeout", ev.Reason)
	}
	got := o.get(t, ann, placed.ID)
	if got.Status != "cancelled" || got.CancelReason != "stock_timeout" || !got.hasStep("stock_timeout") {
		t.Errorf("order after its stock deadline: %s (%q), timeline %+v; want cancelled as stock_timeout", got.Status, got.CancelReason, got.Timeline)
	}
	if asked := moduletest.All[events.PaymentRequested](o.Events); len(asked) != 0 {
		t.Errorf("payment asked for a cancelled order: %+v", asked)
	}
}
