package webtest

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// The signs a currency may be written with, whatever the browser's locale
// ("€12.50", "12,50 €", "EUR 12.50"; "$12.50", "US$12.50", "12,50 $").
var (
	euro   = []string{"€", "EUR"}
	dollar = []string{"$", "USD"}
)

// showsMoney reports whether text shows amount (a decimal string such as
// "43.00") in a currency written with one of signs, in any locale: the
// same digits, whatever separators group them.
func showsMoney(text, amount string, signs []string) bool {
	digits := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	}
	if digits(text) != digits(amount) {
		return false
	}
	for _, s := range signs {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

func TestShowsMoney(t *testing.T) {
	for text, want := range map[string]bool{
		"€43.00": true, "43,00 €": true, "EUR 43.00": true, "€1,043.00": false,
		"43.00": false, "$43.00": false, "€4.30": false,
	} {
		if got := showsMoney(text, "43.00", euro); got != want {
			t.Errorf("showsMoney(%q, 43.00, euro) = %v, want %v", text, got, want)
		}
	}
}

// TestCurrencyInTheBrowser: a shop set to USD shows its prices in dollars,
// formatted by the browser (Intl.NumberFormat, its locale), on the product
// page and in the cart, lines and subtotal. (The EUR shop of
// TestShopInTheBrowser shows euros.)
func TestCurrencyInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) { c.Currency = "USD" })
	_, admin := shop.Admin(t)
	var p struct{ ID string }
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "USD-LAMP-1", "name": "Dollar desk lamp", "price": "1234.50",
		"stock": 5, "description": "A lamp priced in dollars."}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &p)

	s := b.newTab(t, "the shopper", shop.URL).as(t)
	s.open("/products/" + p.ID)
	s.visible("#add-form")
	if got := s.text("#product-price"); !showsMoney(got, "1234.50", dollar) {
		t.Errorf("product page shows the price %q, want 1,234.50 in dollars", got)
	}
	s.shot("currency-product")
	s.typeInto("#add-quantity", "2")
	s.click("#add-to-cart")
	s.waitFor("the cart to count 2", `document.getElementById("cart-count").textContent === "2"`)

	s.open("/cart")
	s.visible("#cart-lines")
	cells := s.texts("#cart-lines tbody td.num")
	if len(cells) != 2 || !showsMoney(cells[0], "1234.50", dollar) || !showsMoney(cells[1], "2469.00", dollar) {
		t.Errorf("cart line shows price and total %q, want 1,234.50 and 2,469.00 in dollars", cells)
	}
	if got := s.text("#cart-subtotal"); !showsMoney(got, "2469.00", dollar) {
		t.Errorf("cart subtotal %q, want 2,469.00 in dollars", got)
	}
	if got := s.text("#cart-subtotal"); strings.Contains(got, "€") {
		t.Errorf("cart subtotal %q is in euros", got)
	}
	s.shot("currency-cart")
}
