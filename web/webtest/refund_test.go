package webtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// logInAs logs the tab in through the login page.
func (tb *tab) logInAs(name string) {
	tb.t.Helper()
	tb.open("/login")
	tb.typeInto("#login-login", name)
	tb.typeInto("#login-password", password+"\n")
	tb.waitFor(name+" to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(name)))
}

// TestRefundInTheBrowser: staff refund one line of a confirmed order on
// its order page (a quantity and a reason); the page follows the refund
// until the provider has given the money back; the customer's order page
// then says "Partly refunded" with the amount, and staff record that the
// goods came back.
func TestRefundInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	w := newWorld(t, b)
	customer := apptest.Unique("refunded")
	if _, err := w.shop.CreateUser(context.Background(), customer, customer+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	token := w.shop.Login(t, customer, password)
	r := w.shop.API.Do("POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{
		{"product_id": w.products["GW-1"], "quantity": 1}, {"product_id": w.products["GW-2"], "quantity": 2}}}, testkit.Bearer(token))
	if r.Status != http.StatusAccepted {
		t.Fatalf("place an order: %d %s", r.Status, r.Body)
	}
	var order struct{ ID, Status string }
	r.Decode(t, &order)
	deadline := time.Now().Add(waitTimeout)
	for order.Status != "confirmed" {
		if time.Now().After(deadline) {
			t.Fatalf("the order is %s, want confirmed", order.Status)
		}
		time.Sleep(50 * time.Millisecond)
		w.shop.API.Do("GET", "/api/v1/orders/"+order.ID, nil, testkit.Bearer(token)).Decode(t, &order)
	}

	t.Run("staff refund a line with a reason and see it go through", func(t *testing.T) {
		s := w.staff.as(t)
		s.logInAs(w.staffName)
		s.open("/orders/" + order.ID)
		s.visible("#refund-form")
		line := fmt.Sprintf(`#refund-form input[data-product-id=%q]`, w.products["GW-2"])
		s.typeInto(line, "1")
		s.typeInto("#refund-reason", "Chipped in transit")
		s.click("#refund-submit")
		s.waitFor("the refund to succeed", `document.getElementById("refund-state")?.dataset.refundState === "partly_refunded"`)
		if got := s.text("#refunded-amount"); !strings.Contains(got, "9.50") {
			t.Errorf("staff see %q refunded, want 9.50", got)
		}
		if got := s.text("#refund-list"); !strings.Contains(got, "Chipped in transit") || !strings.Contains(got, "Glowworm paper lantern") {
			t.Errorf("the refund reads %q, want its reason and line", got)
		}
		// Asking for more than is left is refused next to the amount.
		s.typeInto("#refund-amount", "100")
		s.expectFailure("/refunds", http.StatusUnprocessableEntity)
		s.click("#refund-submit")
		s.visible("#refund-amount-error")
		if got := s.text("#refund-amount-error"); !strings.Contains(got, "left to refund") {
			t.Errorf("too large an amount is answered with %q", got)
		}
		s.typeInto("#refund-amount", "")
		s.typeInto(fmt.Sprintf(`#return-form input[data-product-id=%q]`, w.products["GW-2"]), "1")
		s.click("#return-submit")
		s.waitFor("the return to show", `document.querySelector('#order-timeline li[data-step="returned"]') !== null`)
		s.shot("staff-order-refunds")
	})

	t.Run("the customer's order page shows Partly refunded and the amount", func(t *testing.T) {
		c := w.shopper.as(t)
		c.logInAs(customer)
		c.open("/orders/" + order.ID)
		c.visible("#refund-state")
		if got := c.text("#refund-state"); got != "Partly refunded" {
			t.Errorf("the refund state reads %q, want Partly refunded", got)
		}
		if got := c.text("#refunded-amount"); !strings.Contains(got, "9.50") || !strings.Contains(got, "43.00") {
			t.Errorf("the customer sees %q, want 9.50 of 43.00 refunded", got)
		}
		if n := len(c.texts("#refund-form")); n != 0 {
			t.Error("the customer is offered the staff's refund form")
		}
		c.shot("order-refunded")
	})
	w.shop.CheckInvariants(t)
}
