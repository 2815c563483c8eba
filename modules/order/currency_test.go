package order_test

import (
	"net/url"
	"testing"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// TestCurrency_AnOrderIsInTheShopsCurrency: an order is placed in the
// shop's currency (MODSHOP_CURRENCY, here USD), shows it in its answer,
// on GET and in the list, and asks for its payment in it.
func TestCurrency_AnOrderIsInTheShopsCurrency(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{Currency: "USD"})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	_, placed := o.place(t, ann, 2)
	if placed.Currency != "USD" {
		t.Errorf("placing answers currency %q, want USD", placed.Currency)
	}
	o.reserve(t, placed.ID)
	asked := moduletest.WaitFor(t, o.Events, "payment.requested of "+placed.ID, func(ev events.PaymentRequested) bool { return ev.OrderID == placed.ID })
	if asked.Amount != "20.00" || asked.Currency != "USD" {
		t.Errorf("payment.requested for %s %s, want 20.00 USD", asked.Amount, asked.Currency)
	}
	for _, who := range []string{ann, staff} {
		if got := o.rawOrder(t, who, placed.ID)["currency"]; got != "USD" {
			t.Errorf("GET shows currency %v, want USD", got)
		}
		for _, item := range o.list(t, who, url.Values{}).Items {
			if item.Currency != "USD" {
				t.Errorf("the list shows order %s in %q, want USD", item.ID, item.Currency)
			}
		}
	}
}

// TestCurrency_DefaultsToEUR: a shop that sets no currency is in euros.
func TestCurrency_DefaultsToEUR(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	if got := o.get(t, ann, o.placed(t, ann).ID).Currency; got != "EUR" {
		t.Errorf("currency %q, want EUR", got)
	}
}

// TestCurrency_AnOrderFromBeforeIsInTheShopsCurrency: an order placed
// before orders kept their currency (NULL) reads as in the shop's, and
// asks for its payment in it.
func TestCurrency_AnOrderFromBeforeIsInTheShopsCurrency(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{Currency: "GBP"})
	_, ann := o.Auth.Customer()
	id := o.placed(t, ann).ID
	if err := o.DB.Exec(`UPDATE orders SET currency = NULL WHERE id = ?`, id).Error; err != nil {
		t.Fatal(err)
	}
	if got := o.get(t, ann, id).Currency; got != "GBP" {
		t.Errorf("currency %q, want the shop's, GBP", got)
	}
	o.reserve(t, id)
	asked := moduletest.WaitFor(t, o.Events, "payment.requested of "+id, func(ev events.PaymentRequested) bool { return ev.OrderID == id })
	if asked.Currency != "GBP" {
		t.Errorf("payment.requested in %q, want GBP", asked.Currency)
	}
}
