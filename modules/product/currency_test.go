package product_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/modules/product"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/module"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// TestCurrency_ProductsAreInTheShopsCurrency: a shop set to USD shows
// "USD" beside every price, to staff and shoppers, in the list and the
// item, and announces its products' prices in it.
func TestCurrency_ProductsAreInTheShopsCurrency(t *testing.T) {
	t.Parallel()
	shop := startProductWith(t, product.Config{Currency: "USD"}, func(m *moduletest.Module) {
		moduletest.Record[productevents.ProductCreated](m.Events)
		moduletest.Record[productevents.ProductUpdated](m.Events)
	})
	_, admin := shop.Admin(t)
	p := createProduct(t, shop, admin, map[string]any{"sku": "CUR-USD-1", "name": "Dollar mug", "price": "12.5", "stock": 3})
	if p.Price != "12.50" || p.Currency != "USD" {
		t.Errorf("created %s %q, want 12.50 USD", p.Price, p.Currency)
	}
	for _, token := range []string{"", admin} {
		if _, got := getProduct(t, shop, token, p.ID); got.Currency != "USD" {
			t.Errorf("GET shows %q, want USD", got.Currency)
		}
		var opts []testkit.Option
		if token != "" {
			opts = append(opts, testkit.Bearer(token))
		}
		r := shop.API.Do("GET", "/api/v1/products?q=mug", nil, opts...)
		var page pageJSON
		r.Decode(t, &page)
		if r.Status != http.StatusOK || len(page.Items) != 1 || page.Items[0].Currency != "USD" {
			t.Errorf("list: %d %s, want the mug in USD", r.Status, r.Body)
		}
	}
	created := moduletest.WaitFor(t, shop.Events, "product.created", func(ev productevents.ProductCreated) bool { return ev.ProductID == p.ID })
	if created.Currency != "USD" {
		t.Errorf("product.created in %q, want USD", created.Currency)
	}
	if r := shop.API.Do("PATCH", "/api/v1/products/"+p.ID, map[string]any{"price": "13.00"}, testkit.Bearer(admin)); r.Status != http.StatusOK {
		t.Fatalf("re-price: %d %s", r.Status, r.Body)
	}
	updated := moduletest.WaitFor(t, shop.Events, "product.updated", func(ev productevents.ProductUpdated) bool { return ev.ProductID == p.ID })
	if updated.Price != "13.00" || updated.Currency != "USD" {
		t.Errorf("product.updated %s %q, want 13.00 USD", updated.Price, updated.Currency)
	}
}

// startAs builds the product module as a process of the shop does, with
// the shop's currency set to currency, on m's database: the catalog's
// currency is checked then.
func startAs(t *testing.T, m *moduletest.Module, currency string) error {
	t.Helper()
	r := m.Replica(t)
	_, err := product.Definition(product.Config{Currency: currency}).New(module.Deps{DB: r.DB, Bus: r.Bus, Log: testkit.Logger()})
	return err
}

// TestCurrency_AStartInAnotherCurrencyIsRefusedWhileProductsExist: the
// first start records the catalog's currency; a start with another while
// the catalog has products is refused, naming both; one with the
// recorded currency starts.
func TestCurrency_AStartInAnotherCurrencyIsRefusedWhileProductsExist(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	if err := startAs(t, shop.Module, "EUR"); err != nil {
		t.Fatalf("first start in EUR: %v", err)
	}
	_, admin := shop.Admin(t)
	createProduct(t, shop, admin, map[string]any{"sku": "CUR-EUR-2", "name": "Euro pen", "price": "2.50"})

	err := startAs(t, shop.Module, "USD")
	if err == nil || !strings.Contains(err.Error(), "MODSHOP_CURRENCY=USD") || !strings.Contains(err.Error(), "in EUR") {
		t.Errorf("start in USD with products priced in EUR: %v, want a refusal naming USD and EUR", err)
	}
	if err := startAs(t, shop.Module, "EUR"); err != nil {
		t.Errorf("start in EUR again: %v", err)
	}
	if got := catalogCurrency(t, shop); got != "EUR" {
		t.Errorf("the catalog's currency is %q, want EUR still", got)
	}
}

// TestCurrency_AnEmptyCatalogTakesANewCurrency: without products nothing
// is priced yet, so a start in another currency records it.
func TestCurrency_AnEmptyCatalogTakesANewCurrency(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	for _, c := range []string{"EUR", "USD"} {
		if err := startAs(t, shop.Module, c); err != nil {
			t.Fatalf("start of an empty catalog in %s: %v", c, err)
		}
		if got := catalogCurrency(t, shop); got != c {
			t.Errorf("the catalog's currency is %q, want %s", got, c)
		}
	}
}

// catalogCurrency is the currency the catalog recorded.
func catalogCurrency(t *testing.T, shop *shop) string {
	t.Helper()
	var code string
	if err := shop.Module.Admin.QueryRow(`SELECT currency FROM products.catalog_currency`).Scan(&code); err != nil {
		t.Fatal(err)
	}
	return code
}
