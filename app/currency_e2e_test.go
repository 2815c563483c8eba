package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// currencyOf reads the currency field of the answer to GET path as token,
// or of the first of its items when it is a list.
func currencyOf(t *testing.T, w *sagasuite.World, token, path string) string {
	t.Helper()
	var body struct {
		Currency string `json:"currency"`
		Items    []struct {
			Currency string `json:"currency"`
		} `json:"items"`
	}
	w.API.Do("GET", path, nil, testkit.Bearer(token)).Decode(t, &body)
	if body.Currency == "" && len(body.Items) > 0 {
		return body.Items[0].Currency
	}
	return body.Currency
}

// TestCurrency_AUSDShopSaysUSD: a shop set to MODSHOP_CURRENCY=usd shows
// USD beside its prices, its orders' totals, their payments and refunds
// (here of a charge that came after the order's payment deadline).
func TestCurrency_AUSDShopSaysUSD(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) {
		c.Currency = "usd"
		c.PaymentTimeout = 300 * time.Millisecond
	})
	w := sagasuite.NewWorld(t, shop, map[string]int{"LAMP": 3})
	if got := currencyOf(t, w, w.Customer, "/api/v1/products/"+w.Products["LAMP"]); got != "USD" {
		t.Errorf("product in %q, want USD", got)
	}
	if got := currencyOf(t, w, w.Customer, "/api/v1/products"); got != "USD" {
		t.Errorf("product list in %q, want USD", got)
	}
	_, o := w.Place(t, w.Customer, "pm_card_delayed", map[string]int{"LAMP": 1})
	w.WaitStatus(t, o.ID, "cancelled")
	testkit.Eventually(t, "the late charge to be refunded", func() bool {
		return w.Order(t, w.Admin, o.ID).PaymentState == "refunded"
	})
	if got := currencyOf(t, w, w.Customer, "/api/v1/orders/"+o.ID); got != "USD" {
		t.Errorf("order in %q, want USD", got)
	}
	if got := currencyOf(t, w, w.Admin, "/api/v1/orders"); got != "USD" {
		t.Errorf("order list in %q, want USD", got)
	}
	var body struct {
		Items []struct {
			Currency string `json:"currency"`
			Refunds  []struct {
				Currency string `json:"currency"`
			} `json:"refunds"`
		} `json:"items"`
	}
	w.API.Do("GET", "/api/v1/payments?order_id="+o.ID, nil, testkit.Bearer(w.Customer)).Decode(t, &body)
	if len(body.Items) != 1 || len(body.Items[0].Refunds) != 1 {
		t.Fatalf("payments %+v, want one refunded", body)
	}
	if p := body.Items[0]; p.Currency != "USD" || p.Refunds[0].Currency != "USD" {
		t.Errorf("payment in %q refunded in %q, want USD", p.Currency, p.Refunds[0].Currency)
	}
	shop.CheckInvariants(t)
}

// TestCurrency_AStartInAnotherCurrencyIsRefusedWhileTheCatalogHasProducts:
// a process started with another MODSHOP_CURRENCY than the one the
// catalog's prices are in is refused, naming both, rather than relabel
// every price.
func TestCurrency_AStartInAnotherCurrencyIsRefusedWhileTheCatalogHasProducts(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	sagasuite.NewWorld(t, shop, map[string]int{"PEN": 1})
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = shop.DatabaseURL
	cfg.DBMaxConns = 4
	cfg.Currency = "GBP"
	other, err := app.Open(context.Background(), cfg, apptest.Logger())
	if err == nil {
		_ = other.Close(context.Background())
		t.Fatal("a shop whose catalog is in EUR started in GBP")
	}
	if !strings.Contains(err.Error(), "MODSHOP_CURRENCY=GBP") || !strings.Contains(err.Error(), "in EUR") {
		t.Errorf("refusal %q, want one naming GBP and EUR", err)
	}
}
