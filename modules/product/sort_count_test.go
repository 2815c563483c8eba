package product_test

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// centsOf reads a two-decimal price as cents, to order prices as numbers.
func centsOf(t testing.TB, price string) int {
	t.Helper()
	f, err := strconv.ParseFloat(price, 64)
	must(t, err)
	return int(f*100 + 0.5)
}

func ids(ps []productJSON) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	return out
}

func TestList_SortsAndPagesInEveryOrderTiesIncluded(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	// Ties in every key: two of each name, price and creation time.
	specs := []struct{ sku, name, price string }{
		{"S-1", "Mug", "9.00"}, {"S-2", "Mug", "12.50"}, {"S-3", "Teapot", "12.50"}, {"S-4", "Kettle", "30.00"},
		{"S-5", "Apron", "9.00"}, {"S-6", "Teapot", "100.00"}, {"S-7", "Bowl", "9.00"},
	}
	var all []productJSON
	for _, s := range specs {
		all = append(all, createProduct(t, shop, admin, map[string]any{"sku": s.sku, "name": s.name, "price": s.price, "description": "kitchen thing"}))
	}
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	// Three share one creation instant, two another.
	for _, set := range []struct {
		at  string
		ids []string
	}{
		{"2026-01-02T03:04:05.123456Z", []string{all[0].ID, all[3].ID, all[5].ID}},
		{"2026-01-03T00:00:00Z", []string{all[1].ID, all[6].ID}},
		{"2025-12-31T23:59:59.999999Z", []string{all[2].ID}},
		{"2026-02-01T00:00:00Z", []string{all[4].ID}},
	} {
		for _, id := range set.ids {
			if _, err := db.ExecContext(context.Background(), `UPDATE products.products SET created_at = $1 WHERE id = $2`, set.at, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	created := map[string]string{}
	for _, p := range listAll(t, shop, url.Values{}) {
		created[p.ID] = p.CreatedAt
	}

	byID := func(a, b productJSON) int { return cmp.Compare(a.ID, b.ID) }
	orders := map[string]func(a, b productJSON) int{
		"name": func(a, b productJSON) int { return cmp.Or(cmp.Compare(a.Name, b.Name), byID(a, b)) },
		"price": func(a, b productJSON) int {
			return cmp.Or(cmp.Compare(centsOf(t, a.Price), centsOf(t, b.Price)), byID(a, b))
		},
		"-price": func(a, b productJSON) int {
			return cmp.Or(cmp.Compare(centsOf(t, b.Price), centsOf(t, a.Price)), byID(a, b))
		},
		"newest": func(a, b productJSON) int {
			return cmp.Or(cmp.Compare(created[b.ID], created[a.ID]), cmp.Compare(b.ID, a.ID))
		},
	}
	for sort, order := range orders {
		want := slices.Clone(all)
		slices.SortFunc(want, order)
		for _, limit := range []string{"1", "2", "3", "100"} {
			got := listAll(t, shop, url.Values{"sort": {sort}, "limit": {limit}})
			if !slices.Equal(ids(got), ids(want)) {
				t.Errorf("sort=%s limit=%s: %v, want %v", sort, limit, names(got), names(want))
			}
		}
		// A search keeps the order asked for; relevance is its default.
		got := listAll(t, shop, url.Values{"sort": {sort}, "q": {"kitchen"}, "limit": {"2"}})
		if !slices.Equal(ids(got), ids(want)) {
			t.Errorf("q=kitchen sort=%s: %v, want %v", sort, names(got), names(want))
		}
	}
	if got := listAll(t, shop, url.Values{}); !slices.Equal(names(got), []string{"Apron", "Bowl", "Kettle", "Mug", "Mug", "Teapot", "Teapot"}) {
		t.Errorf("browsing without sort = %v, want by name", names(got))
	}
	if got := listAll(t, shop, url.Values{"q": {"teapot"}, "sort": {"relevance"}, "limit": {"1"}}); len(got) != 2 {
		t.Errorf("q=teapot sort=relevance = %v, want both teapots", names(got))
	}

	// A cursor belongs to its order.
	first := listPage(t, shop, url.Values{"sort": {"price"}, "limit": {"2"}})
	if first.NextCursor == nil {
		t.Fatal("no next page")
	}
	for _, other := range []string{"", "name", "-price", "newest"} {
		r := shop.API.Do("GET", "/api/v1/products?"+url.Values{"sort": {other}, "cursor": {*first.NextCursor}}.Encode(), nil)
		expectProblem(t, "a price cursor with sort="+other, r, http.StatusBadRequest, "")
	}
	if got := listAll(t, shop, url.Values{"sort": {"relevance"}, "limit": {"2"}}); !slices.Equal(names(got), []string{"Apron", "Bowl", "Kettle", "Mug", "Mug", "Teapot", "Teapot"}) {
		t.Errorf("relevance without a search = %v, want by name", names(got))
	}
	for _, bad := range []url.Values{{"sort": {"cheapest"}}, {"sort": {"PRICE"}}, {"sort": {"price,name"}}} {
		expectProblem(t, "sort="+bad.Get("sort"), shop.API.Do("GET", "/api/v1/products?"+bad.Encode(), nil), http.StatusUnprocessableEntity, "sort")
	}
}

func TestList_CountsWhatMatchesUpToTheCap(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "tea", "name": "Tea"})
	createProduct(t, shop, admin, map[string]any{"sku": "TEA-1", "name": "Assam tea", "price": "5.00", "categories": []string{"tea"}})
	createProduct(t, shop, admin, map[string]any{"sku": "TEA-2", "name": "Sencha tea", "price": "7.00", "categories": []string{"tea"}})
	hidden := createProduct(t, shop, admin, map[string]any{"sku": "TEA-3", "name": "Old tea", "price": "7.00", "active": false})

	for _, c := range []struct {
		params url.Values
		want   int
	}{
		{url.Values{}, 2},
		{url.Values{"limit": {"1"}}, 2},
		{url.Values{"q": {"sencha"}}, 1},
		{url.Values{"q": {"nothing-like-it"}}, 0},
		{url.Values{"category": {"tea"}}, 2},
		{url.Values{"sort": {"-price"}, "limit": {"1"}}, 2},
	} {
		page := listPage(t, shop, c.params)
		if page.Count != c.want || page.CountCapped {
			t.Errorf("%s: count %d capped %v, want %d exactly", c.params.Encode(), page.Count, page.CountCapped, c.want)
		}
		if page.NextCursor != nil {
			next := listPage(t, shop, url.Values{"cursor": {*page.NextCursor}, "limit": {"1"}, "sort": c.params["sort"]})
			if next.Count != c.want {
				t.Errorf("%s, second page: count %d, want %d (the whole listing's)", c.params.Encode(), next.Count, c.want)
			}
		}
	}
	if page := listPage(t, shop, url.Values{"include_inactive": {"true"}}, testkit.Bearer(admin)); page.Count != 3 {
		t.Errorf("staff with inactive ones: count %d, want 3 (with %s)", page.Count, hidden.Name)
	}

	// 998 more makes exactly 1000 active: counted exactly; one more is
	// "more than 1000".
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	bulk := func(from, to int) {
		t.Helper()
		_, err := db.ExecContext(context.Background(), `
			WITH made AS (
				INSERT INTO products.products (id, sku, name, price)
				SELECT gen_random_uuid(), 'BULK-' || g, 'Bulk tea ' || g, 3 FROM generate_series($1::int, $2::int) g
				RETURNING id)
			INSERT INTO products.inventory (product_id, on_hand) SELECT id, 1 FROM made`, from, to)
		must(t, err)
	}
	bulk(1, 998)
	for _, params := range []url.Values{{}, {"q": {"tea"}}, {"sort": {"newest"}, "limit": {"5"}}} {
		if page := listPage(t, shop, params); page.Count != 1000 || page.CountCapped {
			t.Errorf("1000 matching, %s: count %d capped %v, want 1000 exactly", params.Encode(), page.Count, page.CountCapped)
		}
	}
	bulk(999, 999)
	for _, params := range []url.Values{{}, {"q": {"tea"}}, {"sort": {"price"}, "limit": {"5"}}} {
		if page := listPage(t, shop, params); page.Count != 1000 || !page.CountCapped {
			t.Errorf("1001 matching, %s: count %d capped %v, want more than 1000", params.Encode(), page.Count, page.CountCapped)
		}
	}
	if page := listPage(t, shop, url.Values{"q": {"sencha"}}); page.Count != 1 || page.CountCapped {
		t.Errorf("a narrow search in a large catalog: count %d capped %v, want 1", page.Count, page.CountCapped)
	}
}
