package webtest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// TestNamesInTheBrowser: staff read who placed an order, by name, with a
// link to the account on the staff users page, on the orders list and on
// the order's page; a rejected order's lines are named for the customer,
// never "Product 644a01f5 (reserving…)".
func TestNamesInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) {
		c.StockTimeout = 5 * time.Minute
		c.PaymentTimeout = 5 * time.Minute
		c.LoginPerClient = 1000
	})
	_, admin := shop.Admin(t)
	staffName, shopperName := apptest.Unique("staffer"), apptest.Unique("shopper")
	if _, err := shop.CreateUser(context.Background(), staffName, staffName+"@example.com", password, true); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.CreateUser(context.Background(), shopperName, shopperName+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	shopper := shop.Login(t, shopperName, password)
	api := func(token, method, path string, body any, want int, out any) {
		t.Helper()
		r := shop.API.Do(method, path, body, testkit.Bearer(token))
		if r.Status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
		}
		if out != nil {
			r.Decode(t, out)
		}
	}
	var lamp, bulb struct{ ID string }
	api(admin, "POST", "/api/v1/products", map[string]any{"sku": "NM-1", "name": "Names desk lamp", "price": "19.00", "stock": 5}, http.StatusCreated, &lamp)
	api(admin, "POST", "/api/v1/products", map[string]any{"sku": "NM-2", "name": "Scarce bulb", "price": "3.00", "stock": 1}, http.StatusCreated, &bulb)
	place := func(product string, quantity int) string {
		var o struct{ ID string }
		api(shopper, "POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa",
			"items": []map[string]any{{"product_id": product, "quantity": quantity}}}, http.StatusAccepted, &o)
		return o.ID
	}
	confirmed, rejected := place(lamp.ID, 1), place(bulb.ID, 3)
	for id, status := range map[string]string{confirmed: "confirmed", rejected: "rejected"} {
		testkit.Eventually(t, "order "+id+" to be "+status+" and staff to know its customer", func() bool {
			var o struct {
				Status   string
				Customer struct{ Username *string }
			}
			api(admin, "GET", "/api/v1/orders/"+id, nil, http.StatusOK, &o)
			return o.Status == status && o.Customer.Username != nil
		})
	}

	staff := b.newTab(t, "staff", shop.URL)
	staff.open("/login")
	staff.typeInto("#login-login", staffName)
	staff.typeInto("#login-password", password+"\n")
	staff.waitFor("staff to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(staffName)))
	staff.open("/staff/orders")
	staff.visible("#staff-orders")
	link := fmt.Sprintf(`#staff-orders li[data-order-id=%q] a.customer-link`, confirmed)
	staff.visible(link)
	if got := staff.text(link); got != shopperName {
		t.Errorf("the staff orders list names the customer %q, want %q", got, shopperName)
	}
	if got, want := staff.attr(link, "href"), "/staff/users?q="+shopperName; got != want {
		t.Errorf("the customer links to %q, want %q", got, want)
	}
	if got := staff.text("#staff-orders"); strings.Contains(got, "customer "+shortID(confirmed)) {
		t.Errorf("the staff orders list still shows a customer id: %q", got)
	}
	staff.shot("staff-orders-customers")

	staff.open("/orders/" + rejected)
	staff.visible("#order-customer a.customer-link")
	if got := staff.text("#order-customer a.customer-link"); got != shopperName {
		t.Errorf("the staff order page names the customer %q, want %q", got, shopperName)
	}
	staff.shot("staff-order-customer")

	s := b.newTab(t, "the shopper", shop.URL)
	s.open("/login")
	s.typeInto("#login-login", shopperName)
	s.typeInto("#login-password", password+"\n")
	s.waitFor("the shopper to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(shopperName)))
	s.open("/orders/" + rejected)
	s.visible("#order-items")
	lines := s.text("#order-items tbody")
	if !strings.Contains(lines, "Scarce bulb") || strings.Contains(lines, "reserving") || strings.Contains(lines, "Product ") {
		t.Errorf("the rejected order's lines read %q, want the product's name", lines)
	}
	if eval[bool](s, `document.getElementById("order-customer") !== null`) {
		t.Error("the customer's own order page shows a customer line meant for staff")
	}
	s.shot("order-rejected-named")
}

// shortID is the id's first group, as format.js shortID shows it.
func shortID(id string) string { return strings.SplitN(id, "-", 2)[0] }
