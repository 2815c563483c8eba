package webtest

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// What no page may show a person: a time as the API writes it, a whole
// UUID, a payment method's id.
var (
	isoTime  = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}`)
	wholeID  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	methodID = regexp.MustCompile(`\bpm_[A-Za-z_]+`)
)

// raw reports what of those the page's main part shows.
func raw(tb *tab) []string {
	tb.t.Helper()
	text := eval[string](tb, `document.querySelector("main").innerText`)
	var found []string
	for _, re := range []*regexp.Regexp{isoTime, wholeID, methodID} {
		found = append(found, re.FindAllString(text, 3)...)
	}
	return found
}

// TestWords_OrdersReadInAShoppersWords: a confirmed order's page has a
// "Confirmed" step, names its product, says "Test Visa"; a rejected one
// says it was not charged and never "reserving…" or "after reservation";
// neither, nor the order lists (the shopper's and the staff's) nor the bus
// page, shows a raw time, id or payment method id; the checkout offers the
// payment methods by their labels.
func TestWords_OrdersReadInAShoppersWords(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) {
		c.SeedDemo = true
		c.LoginPerClient = 1000
	})
	_, admin := shop.Admin(t)
	var product struct{ ID string }
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{
		"sku": "WD-1", "name": "Wordsmith fountain pen", "price": "31.00", "stock": 3, "description": "A pen for words.",
	}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create a product: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &product)
	shopperName, staffName := apptest.Unique("words"), apptest.Unique("wordstaff")
	for _, u := range []struct {
		name  string
		admin bool
	}{{shopperName, false}, {staffName, true}} {
		if _, err := shop.CreateUser(context.Background(), u.name, u.name+"@example.com", password, u.admin); err != nil {
			t.Fatal(err)
		}
	}
	token := shop.Login(t, shopperName, password)
	place := func(quantity int, method string) string {
		t.Helper()
		var o struct{ ID string }
		r := shop.API.Do("POST", "/api/v1/orders", map[string]any{
			"items": []map[string]any{{"product_id": product.ID, "quantity": quantity}}, "payment_method": method,
		}, testkit.Bearer(token))
		if r.Status != http.StatusCreated && r.Status != http.StatusAccepted {
			t.Fatalf("place an order: %d %s", r.Status, r.Body)
		}
		r.Decode(t, &o)
		return o.ID
	}
	confirmed := place(1, "pm_card_visa")
	rejected := place(5, "pm_card_visa") // 2 left

	logIn := func(tb *tab, name string) {
		tb.t.Helper()
		tb.open("/login")
		tb.typeInto("#login-login", name)
		tb.typeInto("#login-password", password+"\n")
		tb.waitFor("the log-in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(name)))
	}
	s := b.newTab(t, "the shopper", shop.URL)
	logIn(s, shopperName)

	t.Run("a confirmed order", func(t *testing.T) {
		s := s.as(t)
		s.open("/orders/" + confirmed)
		s.waitFor("the order to be final", `document.getElementById("order-live")?.textContent.startsWith("Final")`)
		if got := s.attr("#order-status", "data-status"); got != "confirmed" {
			t.Fatalf("order status %q, want confirmed", got)
		}
		steps := s.texts("#order-timeline li strong")
		if !slices.Contains(steps, "Confirmed") || !slices.Contains(steps, "Stock reserved") || !slices.Contains(steps, "Payment requested") {
			t.Errorf("timeline steps %q, want Stock reserved, Payment requested and Confirmed among them", steps)
		}
		if got := s.text("#order-items"); !strings.Contains(got, "Wordsmith fountain pen") {
			t.Errorf("the order's lines %q do not name the product", got)
		}
		if got := s.text("main"); !strings.Contains(got, "Test Visa") {
			t.Errorf("the order page does not say Test Visa:\n%s", got)
		}
		if got := s.text("#order-total"); !showsMoney(got, "31.00", euro) {
			t.Errorf("order total %q, want 31.00", got)
		}
		if found := raw(s); len(found) > 0 {
			t.Errorf("the order page shows %q", found)
		}
		s.shot("order-words")
	})

	t.Run("a rejected order", func(t *testing.T) {
		s := s.as(t)
		s.open("/orders/" + rejected)
		s.waitFor("the order to be final", `document.getElementById("order-live")?.textContent.startsWith("Final")`)
		if got := s.attr("#order-status", "data-status"); got != "rejected" {
			t.Fatalf("order status %q, want rejected", got)
		}
		text := s.text("main")
		for _, never := range []string{"reserving…", "after reservation"} {
			if strings.Contains(text, never) {
				t.Errorf("the rejected order says %q:\n%s", never, text)
			}
		}
		if got := s.text("#order-total"); got != "Not charged" {
			t.Errorf("the rejected order's total reads %q, want Not charged", got)
		}
		if steps := s.texts("#order-timeline li strong"); !slices.Contains(steps, "Not enough stock") {
			t.Errorf("timeline steps %q, want Not enough stock", steps)
		}
		if found := raw(s); len(found) > 0 {
			t.Errorf("the rejected order's page shows %q", found)
		}
		s.shot("order-rejected-words")
	})

	t.Run("my orders", func(t *testing.T) {
		s := s.as(t)
		s.open("/orders")
		s.visible("#orders")
		cards := s.texts("#orders > li")
		if len(cards) != 2 || !strings.Contains(strings.Join(cards, "\n"), "not charged") || !strings.Contains(cards[1], "Test Visa") {
			t.Errorf("my orders reads %q; want two orders, one not charged, paid with Test Visa", cards)
		}
		if found := raw(s); len(found) > 0 {
			t.Errorf("my orders shows %q", found)
		}
	})

	t.Run("the checkout offers the methods by their labels", func(t *testing.T) {
		s := s.as(t)
		s.open("/products/" + product.ID)
		s.click("#add-to-cart")
		s.waitFor("the cart to count 1", `document.getElementById("cart-count").textContent === "1"`)
		s.open("/checkout")
		s.visible("#payment-method")
		labels := s.texts("#payment-method option")
		if !slices.Contains(labels, "Test Visa") {
			t.Errorf("the checkout offers %q, want Test Visa among them", labels)
		}
		for _, l := range labels {
			if methodID.MatchString(l) {
				t.Errorf("the checkout offers %q by its id", l)
			}
		}
	})

	staff := b.newTab(t, "staff", shop.URL)
	logIn(staff, staffName)
	t.Run("staff pages", func(t *testing.T) {
		st := staff.as(t)
		st.open("/staff/orders")
		st.visible("#staff-orders")
		if found := raw(st); len(found) > 0 {
			t.Errorf("the staff orders page shows %q", found)
		}
		st.open("/staff/bus")
		st.idle()
		if found := raw(st); len(found) > 0 {
			t.Errorf("the bus page shows %q", found)
		}
	})
}
