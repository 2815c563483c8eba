package webtest

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// logIn logs a tab in as login.
func (tb *tab) logIn(login string) {
	tb.t.Helper()
	tb.open("/login")
	tb.typeInto("#login-login", login)
	tb.typeInto("#login-password", password+"\n")
	tb.waitFor(login+" to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(login)))
}

// TestShippingInTheBrowser: a shopper checks out with express shipping to
// an address (a missing part is shown on its field first); the order page
// shows the method, the address and a total with shipping, which is what
// the payment charged; staff find the order under "to ship" and ship it
// with a tracking number; the shopper sees it shipped with that number.
func TestShippingInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) {
		c.ShippingMethods = "standard=Standard delivery:4.90,express=Express delivery:9.90"
		c.PaymentTimeout = 5 * time.Minute // nothing times out under a slow race detector
		c.LoginPerClient = 1000            // every tab logs in from 127.0.0.1
	})
	_, admin := shop.Admin(t)
	var product struct{ ID string }
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "SHIP-1", "name": "Parcel lantern", "price": "20.00", "stock": 5,
		"description": "A lantern that travels well."}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create a product: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &product)
	shopperName, staffName := apptest.Unique("shipper"), apptest.Unique("packer")
	for _, u := range []struct {
		name  string
		admin bool
	}{{shopperName, false}, {staffName, true}} {
		if _, err := shop.CreateUser(context.Background(), u.name, u.name+"@example.com", password, u.admin); err != nil {
			t.Fatal(err)
		}
	}
	shopper, staff := b.newTab(t, "the shopper", shop.URL), b.newTab(t, "staff", shop.URL)

	var orderID string
	const tracking = "00340434161234567890"
	t.Run("checkout with an address and express shipping", func(t *testing.T) {
		s := shopper.as(t)
		s.logIn(shopperName)
		s.open("/products/" + product.ID)
		s.click("#add-to-cart")
		s.waitFor("the cart to count 1", `document.getElementById("cart-count").textContent === "1"`)
		s.open("/checkout")
		s.visible("#shipping-fields")
		methods := eval[[]string](s, `[...document.querySelectorAll("#shipping-fields input[name=shipping_method]")].map((i) => i.value)`)
		if !slices.Equal(methods, []string{"pickup", "standard", "express"}) {
			t.Errorf("methods offered %q", methods)
		}
		if eval[bool](s, `!document.getElementById("address-fields").hidden`) {
			t.Error("the address form shows for pickup")
		}
		s.click("#shipping-express")
		s.visible("#ship-name")
		if got := s.text("#checkout-total"); !strings.Contains(got, "29.90") {
			t.Errorf("total with express shipping reads %q, want 29.90", got)
		}
		autocomplete := eval[[]string](s, `["ship-name", "ship-line1", "ship-postal-code", "ship-city", "ship-country"].map((id) => document.getElementById(id).autocomplete)`)
		if want := []string{"shipping name", "shipping address-line1", "shipping postal-code", "shipping address-level2", "shipping country"}; !slices.Equal(autocomplete, want) {
			t.Errorf("autocomplete %q, want %q", autocomplete, want)
		}

		// Without a city the server's 422 shows on the city field.
		s.typeInto("#ship-name", "Ann Example")
		s.typeInto("#ship-line1", "Hauptstraße 1")
		s.typeInto("#ship-postal-code", "10115")
		s.choose("#ship-country", "DE")
		s.expectFailure("/api/v1/orders", http.StatusUnprocessableEntity)
		s.click("#place-order")
		s.visible("#ship-city-error")
		if got := s.text("#ship-city-error"); !strings.Contains(got, "City required") {
			t.Errorf("the missing city reads %q", got)
		}
		if got := s.attr("#ship-city", "aria-invalid"); got != "true" {
			t.Errorf("the city is not marked invalid (aria-invalid=%q)", got)
		}
		s.typeInto("#ship-city", "Berlin")
		s.shot("checkout-shipping")

		s.click("#place-order")
		s.waitFor("the order to show confirmed", `document.querySelector("#order-status[data-status=confirmed]") !== null`)
		orderID = strings.TrimPrefix(s.path(), "/orders/")
		if got := s.text("#order-shipping-method"); !strings.Contains(got, "Express delivery") || !strings.Contains(got, "9.90") {
			t.Errorf("the method shown is %q", got)
		}
		if got := s.text("#order-address"); !strings.Contains(got, "Ann Example") || !strings.Contains(got, "10115 Berlin") || !strings.Contains(got, "Germany") {
			t.Errorf("the address shown is %q", got)
		}
		if got := s.attr("#order-fulfilment", "data-state"); got != "unfulfilled" {
			t.Errorf("fulfilment shown %q, want unfulfilled", got)
		}
		if got := s.text("#order-total"); !showsMoney(got, "29.90", euro) {
			t.Errorf("order total %q, want 29.90 (20.00 and 9.90 shipping)", got)
		}
		var payments struct {
			Items []struct{ Amount, Status string }
		}
		r := shop.API.Do("GET", "/api/v1/payments?order_id="+orderID, nil, testkit.Bearer(admin))
		r.Decode(t, &payments)
		if len(payments.Items) != 1 || payments.Items[0].Amount != "29.90" || payments.Items[0].Status != "captured" {
			t.Errorf("payments of the order %+v, want 29.90 captured", payments.Items)
		}
		s.shot("order-shipping")
	})
	if orderID == "" {
		return
	}

	t.Run("staff ship the order from the to-ship list with a tracking number", func(t *testing.T) {
		s := staff.as(t)
		s.logIn(staffName)
		s.open("/staff/orders")
		s.choose("#order-fulfilment-filter", "to_ship")
		s.waitFor("the orders to ship", `location.search === "?fulfilment=to_ship" && !document.getElementById("main").hasAttribute("aria-busy")`)
		card := fmt.Sprintf(`#staff-orders li[data-order-id=%q]`, orderID)
		s.visible(card)
		if got := s.text(card + " .order-fulfilment"); !strings.Contains(got, "Express delivery · unfulfilled · to Berlin, DE") {
			t.Errorf("the order to ship reads %q", got)
		}
		s.shot("staff-to-ship")
		s.click(card + " .card-title a")
		s.visible("#ship-form")
		s.typeInto("#ship-carrier", "DHL")
		s.typeInto("#ship-tracking", tracking)
		s.click("#ship-order")
		s.waitFor("the order to show shipped", `document.querySelector("#order-fulfilment[data-state=shipped]") !== null`)
		s.visible("#deliver-order")
		s.shot("staff-order-shipped")
		s.open("/staff/orders?fulfilment=to_ship")
		s.gone(card)
	})

	t.Run("the shopper sees the order shipped with its tracking number", func(t *testing.T) {
		s := shopper.as(t)
		s.open("/orders/" + orderID)
		s.visible("#order-tracking")
		if got := s.attr("#order-fulfilment", "data-state"); got != "shipped" {
			t.Errorf("fulfilment shown %q, want shipped", got)
		}
		if got := s.text("#order-tracking"); got != tracking {
			t.Errorf("tracking number shown %q, want %s", got, tracking)
		}
		if got := s.text("#order-carrier"); got != "DHL" {
			t.Errorf("carrier shown %q", got)
		}
		steps := eval[[]string](s, `[...document.querySelectorAll("#order-timeline li")].map((li) => li.dataset.step)`)
		if !slices.Contains(steps, "shipped") {
			t.Errorf("timeline %q lacks shipped", steps)
		}
		if s.text("#order-status") != "Confirmed" {
			t.Errorf("status shown %q: fulfilment is beside the status", s.text("#order-status"))
		}
		s.shot("order-shipped")
	})
	shop.CheckInvariants(t)
}
