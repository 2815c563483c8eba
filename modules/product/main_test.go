package product_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// shop is the product module alone, served behind the shop's middleware,
// with callers made by a fake authenticator and the order saga played by
// events the test publishes.
type shop struct {
	*moduletest.Module
	module *product.Module
	API    *testkit.API
	URL    string
	// DatabaseURL reaches the module's database as superuser.
	DatabaseURL string
}

// startProduct builds the product module, as the shop does by default, on
// a database of its own, and serves it; its expiry runner runs. before
// runs before the bus starts (to Record events).
func startProduct(t testing.TB, before ...func(*moduletest.Module)) *shop {
	t.Helper()
	return startProductWith(t, product.Config{ReservationTTL: 15 * time.Minute}, before...)
}

// startProductWith is startProduct with the module configured by cfg.
func startProductWith(t testing.TB, cfg product.Config, before ...func(*moduletest.Module)) *shop {
	t.Helper()
	files, err := migrations.For(product.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := moduletest.New(t, testkit.ModuleSpec{Name: product.Name, Schema: product.Schema, Migrations: files}, product.RegisterEvents)
	mod := product.New(product.Deps{DB: m.DB, Bus: m.Bus, Log: testkit.Logger(), Config: cfg})
	for _, b := range before {
		b(m)
	}
	m.Start(t)
	m.Run(t, mod.Run)
	srv := m.Serve(t, mod.Routes, product.Definition(product.Config{}).OpenAPI)
	return &shop{Module: m, module: mod, API: srv.API, URL: srv.URL, DatabaseURL: m.ModuleDatabase.URL}
}

// Admin makes a member of staff and returns its id and session token.
func (s *shop) Admin(testing.TB) (id, token string) { return s.Auth.Admin() }

// Customer makes a customer and returns its id and session token.
func (s *shop) Customer(testing.TB) (id, token string) { return s.Auth.Customer() }

// productJSON is a product as the API shows it.
type productJSON struct {
	ID          string `json:"id"`
	SKU         string `json:"sku"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       string `json:"price"`
	Currency    string `json:"currency"`
	Active      bool   `json:"active"`
	Available   int    `json:"available"`
	Categories  []struct {
		ID   string `json:"id"`
		Slug string `json:"slug"`
		Name string `json:"name"`
	} `json:"categories"`
	Images    []imageJSON `json:"images"`
	Inventory *struct {
		OnHand   int `json:"on_hand"`
		Reserved int `json:"reserved"`
	} `json:"inventory"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func (p productJSON) slugs() []string {
	out := make([]string, len(p.Categories))
	for i, c := range p.Categories {
		out[i] = c.Slug
	}
	return out
}

type pageJSON struct {
	Items       []productJSON `json:"items"`
	NextCursor  *string       `json:"next_cursor"`
	Count       int           `json:"count"`
	CountCapped bool          `json:"count_capped"`
}

// createProduct creates a product as staff and fails the test unless it
// answers 201.
func createProduct(t testing.TB, shop *shop, admin string, body map[string]any) productJSON {
	t.Helper()
	r := shop.API.Do("POST", "/api/v1/products", body, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product %v: %d %s", body, r.Status, r.Body)
	}
	var p productJSON
	r.Decode(t, &p)
	return p
}

func createCategory(t testing.TB, shop *shop, admin string, body map[string]any) {
	t.Helper()
	r := shop.API.Do("POST", "/api/v1/categories", body, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create category %v: %d %s", body, r.Status, r.Body)
	}
}

// getProduct fetches a product; token may be empty for an anonymous shopper.
func getProduct(t testing.TB, shop *shop, token, id string) (*testkit.Response, productJSON) {
	t.Helper()
	var opts []testkit.Option
	if token != "" {
		opts = append(opts, testkit.Bearer(token))
	}
	r := shop.API.Do("GET", "/api/v1/products/"+id, nil, opts...)
	var p productJSON
	if r.Status == http.StatusOK {
		r.Decode(t, &p)
	}
	return r, p
}

// listPage fetches one page of the catalog.
func listPage(t testing.TB, shop *shop, params url.Values, opts ...testkit.Option) pageJSON {
	t.Helper()
	r := shop.API.Do("GET", "/api/v1/products?"+params.Encode(), nil, opts...)
	if r.Status != http.StatusOK {
		t.Fatalf("list %s: %d %s", params.Encode(), r.Status, r.Body)
	}
	var page pageJSON
	r.Decode(t, &page)
	return page
}

// listAll walks every page of a listing and returns the products in order.
func listAll(t testing.TB, shop *shop, params url.Values, opts ...testkit.Option) []productJSON {
	t.Helper()
	var all []productJSON
	for pages := 0; ; pages++ {
		if pages > 200 {
			t.Fatalf("list %s: more than 200 pages", params.Encode())
		}
		page := listPage(t, shop, params, opts...)
		all = append(all, page.Items...)
		if page.NextCursor == nil {
			return all
		}
		params = cloneValues(params)
		params.Set("cursor", *page.NextCursor)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

func names(ps []productJSON) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// expectProblem asserts a 4xx problem+json with the given status that names
// field, either in its errors list or in its detail.
func expectProblem(t testing.TB, what string, r *testkit.Response, status int, field string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: %d %s, want %d", what, r.Status, r.Body, status)
		return
	}
	p := r.Problem(t)
	if field == "" {
		return
	}
	if errs, _ := p["errors"].([]any); len(errs) > 0 {
		for _, e := range errs {
			if m, _ := e.(map[string]any); m["field"] == field {
				return
			}
		}
		t.Errorf("%s: problem %v does not name field %q", what, p, field)
		return
	}
	if detail, _ := p["detail"].(string); !strings.Contains(detail, field) {
		t.Errorf("%s: problem %v does not name field %q", what, p, field)
	}
}

// catalogState sums up everything a bad request must leave untouched.
func catalogState(t testing.TB, db *sql.DB) string {
	t.Helper()
	var s string
	err := db.QueryRowContext(context.Background(), `SELECT concat_ws(' ',
		(SELECT count(*) FROM products.products),
		(SELECT count(*) FROM products.categories),
		(SELECT count(*) FROM products.product_categories),
		(SELECT coalesce(sum(on_hand), 0) FROM products.inventory),
		(SELECT count(*) FROM products.stock_movements),
		(SELECT coalesce(string_agg(id::text || name || price::text || active::text || updated_at::text, ',' ORDER BY id), '') FROM products.products))`).Scan(&s)
	if err != nil {
		t.Fatalf("catalog state: %v", err)
	}
	return s
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
