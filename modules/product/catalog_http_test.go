package product_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/platform/testkit"
)

func TestStaff_CreatesChangesAndRestocksProducts(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	api := shop.API
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)

	// Categories, one with a parent.
	createCategory(t, shop, admin, map[string]any{"slug": "kitchen", "name": "Kitchen"})
	createCategory(t, shop, admin, map[string]any{"slug": "mugs", "name": "Mugs", "parent": "kitchen"})
	r := api.Do("GET", "/api/v1/categories", nil)
	var cats struct {
		Items []struct {
			Slug   string  `json:"slug"`
			Name   string  `json:"name"`
			Parent *string `json:"parent"`
		} `json:"items"`
	}
	r.Decode(t, &cats)
	if len(cats.Items) != 2 {
		t.Fatalf("categories = %+v, want kitchen and mugs", cats.Items)
	}
	for _, c := range cats.Items {
		switch c.Slug {
		case "kitchen":
			if c.Parent != nil {
				t.Errorf("kitchen has parent %q", *c.Parent)
			}
		case "mugs":
			if c.Parent == nil || *c.Parent != "kitchen" || c.Name != "Mugs" {
				t.Errorf("mugs = %+v, want name Mugs under kitchen", c)
			}
		default:
			t.Errorf("unexpected category %+v", c)
		}
	}

	// A product: price as a decimal string, initial stock, a category.
	r = api.Do("POST", "/api/v1/products", map[string]any{
		"sku": "MUG-1", "name": "Enamel mug", "description": "Camping mug, 350 ml.",
		"price": "12.5", "stock": 10, "categories": []string{"mugs"},
	}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	var created productJSON
	r.Decode(t, &created)
	if loc := r.Header.Get("Location"); loc != "/api/v1/products/"+created.ID {
		t.Errorf("Location = %q, want /api/v1/products/%s", loc, created.ID)
	}
	if created.Price != "12.50" || created.Available != 10 || !created.Active || !slices.Equal(created.slugs(), []string{"mugs"}) {
		t.Errorf("created = %+v, want price 12.50, 10 available, active, in mugs", created)
	}

	// Shoppers see it with its available stock but not the stock detail.
	r, got := getProduct(t, shop, "", created.ID)
	if r.Status != http.StatusOK {
		t.Fatalf("get as anonymous: %d %s", r.Status, r.Body)
	}
	if got.Name != "Enamel mug" || got.Price != "12.50" || got.Available != 10 || got.Inventory != nil {
		t.Errorf("anonymous sees %+v, want Enamel mug at 12.50 with 10 available and no inventory", got)
	}
	// Browsing the parent category finds products of its child.
	if ps := listAll(t, shop, url.Values{"category": {"kitchen"}}); len(ps) != 1 || ps[0].ID != created.ID {
		t.Errorf("category=kitchen lists %v, want the mug (filed under its child mugs)", names(ps))
	}

	// PATCH changes name, price, categories; the price keeps two decimals.
	r = api.Do("PATCH", "/api/v1/products/"+created.ID, map[string]any{
		"name": "Enamel camping mug", "price": "7", "categories": []string{"kitchen", "mugs"},
	}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	_, got = getProduct(t, shop, customer, created.ID)
	if got.Name != "Enamel camping mug" || got.Price != "7.00" || !slices.Equal(got.slugs(), []string{"kitchen", "mugs"}) || got.Description != "Camping mug, 350 ml." {
		t.Errorf("after patch = %+v, want the new name, 7.00, both categories and the old description", got)
	}
	// The largest price NUMERIC(10,2) holds and the smallest above zero are fine.
	for _, price := range []string{"99999999.99", "0.01"} {
		r = api.Do("PATCH", "/api/v1/products/"+created.ID, map[string]any{"price": price}, testkit.Bearer(admin))
		var p productJSON
		r.Decode(t, &p)
		if r.Status != http.StatusOK || p.Price != price {
			t.Errorf("patch price %s: %d %s", price, r.Status, r.Body)
		}
	}
	r = api.Do("PATCH", "/api/v1/products/"+created.ID, map[string]any{"price": "12.5"}, testkit.Bearer(admin))
	var patched productJSON
	r.Decode(t, &patched)
	if r.Status != http.StatusOK || patched.Price != "12.50" || patched.Name != "Enamel camping mug" {
		t.Errorf("patch price 12.5: %d %+v, want 12.50 and the name unchanged", r.Status, patched)
	}

	// Deactivated: gone for shoppers, still there for staff.
	other := createProduct(t, shop, admin, map[string]any{"sku": "MUG-2", "name": "Espresso cup", "price": "4.20", "stock": 3})
	r = api.Do("PATCH", "/api/v1/products/"+created.ID, map[string]any{"active": false}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("deactivate: %d %s", r.Status, r.Body)
	}
	if ps := listAll(t, shop, url.Values{}); len(ps) != 1 || ps[0].ID != other.ID {
		t.Errorf("public list after deactivation = %v, want only the espresso cup", names(ps))
	}
	if ps := listAll(t, shop, url.Values{"q": {"enamel"}}, testkit.Bearer(customer)); len(ps) != 0 {
		t.Errorf("search finds the inactive product: %v", names(ps))
	}
	for who, token := range map[string]string{"anonymous": "", "customer": customer} {
		if r, _ := getProduct(t, shop, token, created.ID); r.Status != http.StatusNotFound {
			t.Errorf("%s gets the inactive product: %d %s", who, r.Status, r.Body)
		} else {
			r.Problem(t)
		}
	}
	r, got = getProduct(t, shop, admin, created.ID)
	if r.Status != http.StatusOK || got.Active || got.Inventory == nil || got.Inventory.OnHand != 10 {
		t.Errorf("staff get of the inactive product: %d %+v, want it inactive with 10 on hand", r.Status, got)
	}
	if ps := listAll(t, shop, url.Values{"include_inactive": {"true"}}, testkit.Bearer(admin)); len(ps) != 2 {
		t.Errorf("staff list with include_inactive = %v, want both products", names(ps))
	}
	if ps := listAll(t, shop, url.Values{"include_inactive": {"true"}}, testkit.Bearer(customer)); len(ps) != 1 {
		t.Errorf("a customer asking for include_inactive sees %v, want only the active product", names(ps))
	}
	r = api.Do("PATCH", "/api/v1/products/"+created.ID, map[string]any{"active": true}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("reactivate: %d %s", r.Status, r.Body)
	}
	if r, _ := getProduct(t, shop, "", created.ID); r.Status != http.StatusOK {
		t.Errorf("reactivated product: %d", r.Status)
	}

	// Stock: restock, correct, never below zero.
	stock := func(delta int) *testkit.Response {
		return api.Do("POST", "/api/v1/products/"+created.ID+"/stock", map[string]any{"delta": delta, "reason": "count"}, testkit.Bearer(admin))
	}
	for _, step := range []struct{ delta, want int }{{5, 15}, {-4, 11}} {
		r = stock(step.delta)
		var p productJSON
		r.Decode(t, &p)
		if r.Status != http.StatusOK || p.Available != step.want || p.Inventory == nil || p.Inventory.OnHand != step.want {
			t.Errorf("stock %+d: %d %s, want %d available", step.delta, r.Status, r.Body, step.want)
		}
		if _, got := getProduct(t, shop, "", created.ID); got.Available != step.want {
			t.Errorf("after stock %+d a shopper sees %d available, want %d", step.delta, got.Available, step.want)
		}
	}
	r = stock(-12)
	expectProblem(t, "correction below zero", r, http.StatusConflict, "")
	if _, got := getProduct(t, shop, "", created.ID); got.Available != 11 {
		t.Errorf("a refused correction changed stock to %d, want 11", got.Available)
	}
	if r = stock(-11); r.Status != http.StatusOK {
		t.Errorf("correction to exactly zero: %d %s", r.Status, r.Body)
	}
	if _, got := getProduct(t, shop, "", created.ID); got.Available != 0 {
		t.Errorf("sold out product shows %d available, want 0", got.Available)
	}
	expectProblem(t, "correction below zero at zero", stock(-1), http.StatusConflict, "")

	// On hand = initial + restocks - corrections, by the movements ledger.
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	if n := testkit.QueryInt(t, db, `SELECT coalesce(sum(delta), -1) FROM products.stock_movements WHERE product_id = $1`, created.ID); n != 0 {
		t.Errorf("stock movements sum to %d, want 0 (on hand)", n)
	}
}

func TestCategoryFilter_IncludesEveryLevelBelow(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "coffee-tea", "name": "Coffee & Tea"})
	createCategory(t, shop, admin, map[string]any{"slug": "tea", "name": "Tea", "parent": "coffee-tea"})
	createCategory(t, shop, admin, map[string]any{"slug": "green-tea", "name": "Green tea", "parent": "tea"})
	createProduct(t, shop, admin, map[string]any{"sku": "T-1", "name": "Sencha", "price": "9.00", "categories": []string{"green-tea"}})
	createProduct(t, shop, admin, map[string]any{"sku": "T-2", "name": "Assam", "price": "8.00", "categories": []string{"tea"}})
	createProduct(t, shop, admin, map[string]any{"sku": "T-3", "name": "Espresso beans", "price": "8.00", "categories": []string{"coffee-tea"}})
	createProduct(t, shop, admin, map[string]any{"sku": "T-4", "name": "Whisk", "price": "8.00"})

	for cat, want := range map[string][]string{
		"green-tea":  {"Sencha"},
		"tea":        {"Assam", "Sencha"},
		"coffee-tea": {"Assam", "Espresso beans", "Sencha"},
	} {
		if got := names(listAll(t, shop, url.Values{"category": {cat}})); !slices.Equal(got, want) {
			t.Errorf("category=%s lists %v, want %v", cat, got, want)
		}
	}
}

func TestAdminRoutes_CustomerIs403AnonymousIs401(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	p := createProduct(t, shop, admin, map[string]any{"sku": "LOCK-1", "name": "Padlock", "price": "15.00", "stock": 4})
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	before := catalogState(t, db)

	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/categories", map[string]any{"slug": "tools", "name": "Tools"}},
		{"POST", "/api/v1/products", map[string]any{"sku": "LOCK-2", "name": "Other padlock", "price": "1.00"}},
		{"PATCH", "/api/v1/products/" + p.ID, map[string]any{"price": "0.01"}},
		{"POST", "/api/v1/products/" + p.ID + "/stock", map[string]any{"delta": -4}},
	}
	for _, rt := range routes {
		what := rt.method + " " + rt.path
		expectProblem(t, what+" as customer", shop.API.Do(rt.method, rt.path, rt.body, testkit.Bearer(customer)), http.StatusForbidden, "")
		r := shop.API.Do(rt.method, rt.path, rt.body)
		expectProblem(t, what+" anonymously", r, http.StatusUnauthorized, "")
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s anonymously: WWW-Authenticate = %q", what, r.Header.Get("WWW-Authenticate"))
		}
		expectProblem(t, what+" with a made-up token", shop.API.Do(rt.method, rt.path, rt.body, testkit.Bearer("not-a-session")), http.StatusUnauthorized, "")
	}
	if after := catalogState(t, db); after != before {
		t.Errorf("refused requests changed the catalog:\nbefore %s\nafter  %s", before, after)
	}

	// Unknown and malformed product ids are 404, for shoppers and staff alike.
	ids := []string{uuid.NewString(), "42", "not-an-id", strings.ToUpper(p.ID), p.ID + "0", "%20" + p.ID}
	for _, id := range ids {
		for who, token := range map[string]string{"anonymous": "", "admin": admin} {
			opts := []testkit.Option{}
			if token != "" {
				opts = append(opts, testkit.Bearer(token))
			}
			expectProblem(t, "GET product "+id+" as "+who, shop.API.Do("GET", "/api/v1/products/"+id, nil, opts...), http.StatusNotFound, "")
		}
		expectProblem(t, "PATCH product "+id, shop.API.Do("PATCH", "/api/v1/products/"+id, map[string]any{"name": "x"}, testkit.Bearer(admin)), http.StatusNotFound, "")
		expectProblem(t, "stock of product "+id, shop.API.Do("POST", "/api/v1/products/"+id+"/stock", map[string]any{"delta": 1}, testkit.Bearer(admin)), http.StatusNotFound, "")
	}
	if after := catalogState(t, db); after != before {
		t.Errorf("requests for unknown products changed the catalog:\nbefore %s\nafter  %s", before, after)
	}
}

func TestBadInput_Is4xxProblemNamingTheFieldAndChangesNothing(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	api := shop.API
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "garden", "name": "Garden"})
	p := createProduct(t, shop, admin, map[string]any{"sku": "HOSE-1", "name": "Garden hose", "price": "19.99", "stock": 5, "categories": []string{"garden"}})
	for i := range 3 { // enough for a second page at limit=2
		createProduct(t, shop, admin, map[string]any{"sku": "HOSE-X" + string(rune('A'+i)), "name": "Hose reel " + string(rune('A'+i)), "price": "5.00"})
	}
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	before := catalogState(t, db)
	auth := testkit.Bearer(admin)

	create := func(change map[string]any) testkit.Raw {
		body := map[string]any{"sku": "NEW-1", "name": "Watering can", "price": "9.50", "stock": 3, "categories": []string{"garden"}}
		for k, v := range change {
			if v == nil {
				delete(body, k)
			} else {
				body[k] = v
			}
		}
		raw, err := json.Marshal(body)
		must(t, err)
		return testkit.Raw(raw)
	}
	type tc struct {
		name   string
		method string
		path   string
		body   testkit.Raw
		status int
		field  string
	}
	cases := []tc{
		// Prices: negative, zero, absurd, too precise, not a number, a JSON number.
		{"negative price", "POST", "/api/v1/products", create(map[string]any{"price": "-1.00"}), 422, "price"},
		{"zero price", "POST", "/api/v1/products", create(map[string]any{"price": "0"}), 422, "price"},
		{"zero price with decimals", "POST", "/api/v1/products", create(map[string]any{"price": "0.00"}), 422, "price"},
		{"price in exponent notation", "POST", "/api/v1/products", create(map[string]any{"price": "1e12"}), 422, "price"},
		{"price too large for the column", "POST", "/api/v1/products", create(map[string]any{"price": "1000000000000"}), 422, "price"},
		{"price with three decimals", "POST", "/api/v1/products", create(map[string]any{"price": "12.345"}), 422, "price"},
		{"price not a number", "POST", "/api/v1/products", create(map[string]any{"price": "abc"}), 422, "price"},
		{"price with a comma", "POST", "/api/v1/products", create(map[string]any{"price": "12,50"}), 422, "price"},
		{"price NaN", "POST", "/api/v1/products", create(map[string]any{"price": "NaN"}), 422, "price"},
		{"price missing", "POST", "/api/v1/products", create(map[string]any{"price": nil}), 422, "price"},
		{"price as a JSON number", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"Watering can","price":12.5}`), 400, "price"},
		// Stock: negative, huge, fractional, a string.
		{"negative stock", "POST", "/api/v1/products", create(map[string]any{"stock": -1}), 422, "stock"},
		{"stock above the bound", "POST", "/api/v1/products", create(map[string]any{"stock": 1_000_001}), 422, "stock"},
		{"stock 1e12", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"Watering can","price":"9.50","stock":1000000000000}`), 422, "stock"},
		{"stock beyond int64", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"Watering can","price":"9.50","stock":1e30}`), 400, "stock"},
		{"fractional stock", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"Watering can","price":"9.50","stock":1.5}`), 400, "stock"},
		{"stock as a string", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"Watering can","price":"9.50","stock":"5"}`), 400, "stock"},
		// Fields a client must not set.
		{"available on create", "POST", "/api/v1/products", create(map[string]any{"available": 100}), 400, "available"},
		{"reserved on create", "POST", "/api/v1/products", create(map[string]any{"reserved": 0}), 400, "reserved"},
		{"id on create", "POST", "/api/v1/products", create(map[string]any{"id": uuid.NewString()}), 400, "id"},
		{"created_at on create", "POST", "/api/v1/products", create(map[string]any{"created_at": "2020-01-01T00:00:00Z"}), 400, "created_at"},
		{"inventory on create", "POST", "/api/v1/products", create(map[string]any{"inventory": map[string]int{"on_hand": 5, "reserved": 0}}), 400, "inventory"},
		// Other fields.
		{"duplicate SKU", "POST", "/api/v1/products", create(map[string]any{"sku": "HOSE-1"}), 409, "sku"},
		{"SKU in lower case", "POST", "/api/v1/products", create(map[string]any{"sku": "new-1"}), 422, "sku"},
		{"SKU too long", "POST", "/api/v1/products", create(map[string]any{"sku": strings.Repeat("A", 33)}), 422, "sku"},
		{"empty name", "POST", "/api/v1/products", create(map[string]any{"name": "   "}), 422, "name"},
		{"name too long", "POST", "/api/v1/products", create(map[string]any{"name": strings.Repeat("é", 121)}), 422, "name"},
		{"description too long", "POST", "/api/v1/products", create(map[string]any{"description": strings.Repeat("x", 4001)}), 422, "description"},
		{"unknown category", "POST", "/api/v1/products", create(map[string]any{"categories": []string{"garden", "no-such-category"}}), 422, "categories"},
		{"category slug with bad characters", "POST", "/api/v1/products", create(map[string]any{"categories": []string{"Garden Tools!"}}), 422, "categories"},
		{"too many categories", "POST", "/api/v1/products", create(map[string]any{"categories": slices.Repeat([]string{"garden"}, 11)}), 422, "categories"},
		{"invalid UTF-8 in the body", "POST", "/api/v1/products", testkit.Raw("{\"sku\":\"NEW-1\",\"name\":\"can \xff\xfe\",\"price\":\"9.50\"}"), 400, ""},
		{"NUL in the name", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"can\u0000","price":"9.50"}`), 400, ""},
		{"null body", "POST", "/api/v1/products", testkit.Raw(`null`), 400, ""},
		{"array body", "POST", "/api/v1/products", testkit.Raw(`[]`), 400, ""},
		{"truncated body", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1",`), 400, ""},
		{"two objects", "POST", "/api/v1/products", testkit.Raw(`{"sku":"NEW-1","name":"a","price":"1.00"}{}`), 400, ""},

		// PATCH: stock and SKU have no place here; same price rules.
		{"patch stock", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"stock":1000}`), 400, "stock"},
		{"patch sku", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"sku":"HOSE-2"}`), 400, "sku"},
		{"patch available", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"available":1000}`), 400, "available"},
		{"patch nothing", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{}`), 422, ""},
		{"patch negative price", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"price":"-5.00"}`), 422, "price"},
		{"patch zero price", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"price":"0.00"}`), 422, "price"},
		{"patch price with three decimals", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"price":"12.345"}`), 422, "price"},
		{"patch price as a number", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"price":12.5}`), 400, "price"},
		{"patch empty name", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"name":""}`), 422, "name"},
		{"patch active as a string", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"active":"no"}`), 400, "active"},
		{"patch name with an unknown category", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"name":"Renamed hose","price":"1.00","categories":["no-such-category"]}`), 422, "categories"},
		{"patch category with bad characters", "PATCH", "/api/v1/products/" + p.ID, testkit.Raw(`{"categories":["Garden!"]}`), 422, "categories"},

		// Stock changes: zero, huge, fractional, not a number, unknown fields.
		{"delta zero", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":0}`), 422, "delta"},
		{"delta missing", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"reason":"count"}`), 422, "delta"},
		{"delta above the bound", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":1000001}`), 422, "delta"},
		{"delta below the bound", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":-1000001}`), 422, "delta"},
		{"delta 1e12", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":1000000000000}`), 422, "delta"},
		{"delta beyond int64", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":99999999999999999999}`), 400, "delta"},
		{"fractional delta", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":1.5}`), 400, "delta"},
		{"delta as a string", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":"5"}`), 400, "delta"},
		{"on_hand instead of delta", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"on_hand":100}`), 400, "on_hand"},
		{"reason too long", "POST", "/api/v1/products/" + p.ID + "/stock", testkit.Raw(`{"delta":1,"reason":"` + strings.Repeat("r", 201) + `"}`), 422, "reason"},

		// Categories.
		{"category slug with spaces", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"Garden Tools","name":"Garden tools"}`), 422, "slug"},
		{"category slug with underscore", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"garden_tools","name":"Garden tools"}`), 422, "slug"},
		{"category slug with a trailing dash", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"garden-","name":"Garden tools"}`), 422, "slug"},
		{"category slug too long", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"` + strings.Repeat("a", 61) + `","name":"Long"}`), 422, "slug"},
		{"category without name", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"tools","name":" "}`), 422, "name"},
		{"category with unknown parent", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"tools","name":"Tools","parent":"no-such"}`), 422, "parent"},
		{"category with a malformed parent", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"tools","name":"Tools","parent":"Garden!"}`), 422, "parent"},
		{"duplicate category slug", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"garden","name":"Garden again"}`), 409, "slug"},
		{"category with an id", "POST", "/api/v1/categories", testkit.Raw(`{"slug":"tools","name":"Tools","id":"` + uuid.NewString() + `"}`), 400, "id"},
	}
	for _, c := range cases {
		r := api.Do(c.method, c.path, c.body, auth)
		expectProblem(t, c.name, r, c.status, c.field)
	}
	// Not JSON at all.
	r := api.Do("POST", "/api/v1/products", testkit.Raw(`sku=NEW-1`), auth, testkit.Header("Content-Type", "text/plain"))
	expectProblem(t, "text/plain body", r, http.StatusUnsupportedMediaType, "")

	// Listing: limit, cursor, q, category.
	firstPage := listPage(t, shop, url.Values{"limit": {"2"}})
	if firstPage.NextCursor == nil {
		t.Fatal("no next cursor on a first page of 2 out of 4")
	}
	searchPage := listPage(t, shop, url.Values{"limit": {"1"}, "q": {"hose"}})
	if searchPage.NextCursor == nil {
		t.Fatal("no next cursor on a first search page of 1")
	}
	wrongScope := base64.RawURLEncoding.EncodeToString([]byte(`{"n":"Garden hose","i":"` + p.ID + `","s":"000000000000"}`))
	garbageJSON := base64.RawURLEncoding.EncodeToString([]byte(`{"n":`))
	longCursor := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte(" "), 600))
	badIDCursor := base64.RawURLEncoding.EncodeToString([]byte(`{"n":"Garden hose","i":"1 OR 1=1","s":"` + cursorScope(t, *firstPage.NextCursor) + `"}`))
	list := []struct {
		name   string
		query  string
		status int
		field  string
	}{
		{"limit zero", "limit=0", 422, "limit"},
		{"limit 101", "limit=101", 422, "limit"},
		{"limit negative", "limit=-1", 422, "limit"},
		{"limit not a number", "limit=x", 422, "limit"},
		{"limit fractional", "limit=1.5", 422, "limit"},
		{"limit huge", "limit=99999999999999999999", 422, "limit"},
		{"garbage cursor", "cursor=" + url.QueryEscape("!!not a cursor!!"), 400, "cursor"},
		{"cursor of broken JSON", "cursor=" + garbageJSON, 400, "cursor"},
		{"cursor with a wrong scope", "cursor=" + wrongScope, 400, "cursor"},
		{"cursor with a bad id", "cursor=" + badIDCursor, 400, "cursor"},
		{"oversized cursor", "cursor=" + longCursor, 400, "cursor"},
		{"browse cursor used in a search", "q=hose&cursor=" + url.QueryEscape(*firstPage.NextCursor), 400, "cursor"},
		{"browse cursor used with a category", "category=garden&cursor=" + url.QueryEscape(*firstPage.NextCursor), 400, "cursor"},
		{"search cursor used for another search", "q=reel&cursor=" + url.QueryEscape(*searchPage.NextCursor), 400, "cursor"},
		{"search cursor used for browsing", "cursor=" + url.QueryEscape(*searchPage.NextCursor), 400, "cursor"},
		{"invalid UTF-8 in q", "q=%FF%FE", 422, "q"},
		{"invalid UTF-8 after valid text in q", "q=hose%C3%28", 422, "q"},
		{"NUL in q", "q=hose%00", 422, "q"},
		{"q longer than 200 characters", "q=" + strings.Repeat("a", 201), 422, "q"},
		{"q of 201 multibyte characters", "q=" + url.QueryEscape(strings.Repeat("é", 201)), 422, "q"},
		{"category with bad characters", "category=" + url.QueryEscape("Garden Tools!"), 422, "category"},
		{"category with invalid UTF-8", "category=%FF", 422, "category"},
	}
	for _, c := range list {
		r := api.Do("GET", "/api/v1/products?"+c.query, nil)
		if c.status == 400 && r.Status == 400 {
			// A cursor problem need not list fields; it must say it is the cursor.
			p := r.Problem(t)
			if d, _ := p["detail"].(string); !strings.Contains(d, "cursor") {
				t.Errorf("%s: problem %v does not mention the cursor", c.name, p)
			}
			continue
		}
		expectProblem(t, c.name, r, c.status, c.field)
	}
	// At the bounds, the same parameters are fine.
	for _, q := range []string{"limit=1", "limit=100", "q=" + strings.Repeat("a", 200), "q=" + url.QueryEscape(strings.Repeat("é", 200))} {
		if r := api.Do("GET", "/api/v1/products?"+q, nil); r.Status != http.StatusOK {
			t.Errorf("%.30s…: %d %s, want 200", q, r.Status, r.Body)
		}
	}

	if after := catalogState(t, db); after != before {
		t.Errorf("bad requests changed the catalog:\nbefore %s\nafter  %s", before, after)
	}
	if _, got := getProduct(t, shop, "", p.ID); got.Name != "Garden hose" || got.Price != "19.99" || got.Available != 5 || !slices.Equal(got.slugs(), []string{"garden"}) {
		t.Errorf("the hose after bad requests = %+v, want it unchanged", got)
	}
}

// cursorScope reads the scope out of a cursor the shop gave out, to forge
// one that differs from it in nothing else.
func cursorScope(t testing.TB, cursor string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	must(t, err)
	var c struct {
		S string `json:"s"`
	}
	must(t, json.Unmarshal(raw, &c))
	if c.S == "" {
		t.Fatalf("cursor %s has no scope", raw)
	}
	return c.S
}

// A cursor is opaque but not secret: one edited to hold a NUL in its
// position must be refused like any other bad cursor, not fail in the
// database.
func TestCursor_EditedWithANulCharacterIs400(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	for i := range 3 {
		createProduct(t, shop, admin, map[string]any{"sku": "NUL-" + string(rune('A'+i)), "name": "Rake " + string(rune('A'+i)), "price": "3.00"})
	}
	page := listPage(t, shop, url.Values{"limit": {"1"}})
	if page.NextCursor == nil {
		t.Fatal("no next cursor")
	}
	raw, err := base64.RawURLEncoding.DecodeString(*page.NextCursor)
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(raw, &c))
	c["n"] = "Rake\u0000"
	edited, err := json.Marshal(c)
	must(t, err)
	r := shop.API.Do("GET", "/api/v1/products?cursor="+base64.RawURLEncoding.EncodeToString(edited), nil)
	expectProblem(t, "cursor with NUL in its name", r, http.StatusBadRequest, "")
}

// On hand is bounded in total (1,000,000,000, a CHECK as well as the code),
// so enough restocks can never overflow the integer column: past the bound
// is a 4xx, never a 500.
func TestRestock_BeyondWhatOnHandCanHoldIsRefused(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	p := createProduct(t, shop, admin, map[string]any{"sku": "BIG-1", "name": "Paper clips", "price": "0.50", "stock": 1_000_000})
	// Stands for 999 restocks of 1,000,000 each, which the API accepts.
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	if _, err := db.ExecContext(context.Background(), `UPDATE products.inventory SET on_hand = 999500000 WHERE product_id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	r := shop.API.Do("POST", "/api/v1/products/"+p.ID+"/stock", map[string]any{"delta": 1_000_000}, testkit.Bearer(admin))
	if r.Status < 400 || r.Status >= 500 {
		t.Errorf("restock past the bound: %d %s, want a 4xx problem (409 or 422)", r.Status, r.Body)
	}
	if _, got := getProduct(t, shop, "", p.ID); got.Available != 999500000 {
		t.Errorf("available = %d, want 999500000 unchanged", got.Available)
	}
}

// TestSeedDemo_TwiceAddsTheCatalogOnce: the demo catalog (what `modshop
// seed --demo` loads; app/seed_test.go checks the command) is 8 categories
// and 52 products, listed, searchable and in stock as described; seeding
// again adds nothing and leaves staff's changes alone.
func TestSeedDemo_TwiceAddsTheCatalogOnce(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	seed := func() product.SeedResult {
		t.Helper()
		res, err := shop.module.SeedDemo(context.Background())
		if err != nil {
			t.Fatalf("seed the demo catalog: %v", err)
		}
		return res
	}
	if res := seed(); res.Categories != 8 || res.Products != 52 {
		t.Fatalf("first seed added %d categories and %d products, want 8 and 52", res.Categories, res.Products)
	}

	_, admin := shop.Admin(t)
	all := listAll(t, shop, url.Values{"limit": {"100"}})
	if len(all) != 52 {
		t.Fatalf("the shop lists %d products after seeding, want 52", len(all))
	}
	bySKU := map[string]productJSON{}
	for _, p := range all {
		if p.Description == "" || p.Price == "" || len(p.Categories) == 0 {
			t.Errorf("demo product %s %q lacks a description, price or category", p.SKU, p.Name)
		}
		bySKU[p.SKU] = p
	}
	for _, sku := range []string{"TE-2004", "BO-4006", "OU-6005"} {
		if p, ok := bySKU[sku]; !ok || p.Available != 0 {
			t.Errorf("out-of-stock demo product %s: listed %v, available %d, want listed with 0", sku, ok, p.Available)
		}
	}
	if p := bySKU["CT-1001"]; p.Available != 40 || p.Price != "14.90" {
		t.Errorf("CT-1001 = %+v, want 40 available at 14.90", p)
	}
	if ps := listAll(t, shop, url.Values{"category": {"coffee-tea"}}); !slices.ContainsFunc(ps, func(p productJSON) bool { return p.SKU == "TE-2004" }) {
		t.Errorf("category coffee-tea does not include the tea (its child category) %v", names(ps))
	}
	if ps := listPage(t, shop, url.Values{"q": {"coffee beans"}}).Items; len(ps) == 0 || !strings.Contains(strings.ToLower(ps[0].Name), "coffee beans") {
		t.Errorf("search for coffee beans in the demo catalog finds %v", names(ps))
	}

	// Staff change a demo product; seeding again neither duplicates nor undoes it.
	ct := bySKU["CT-1001"]
	if r := shop.API.Do("PATCH", "/api/v1/products/"+ct.ID, map[string]any{"price": "15.50"}, testkit.Bearer(admin)); r.Status != http.StatusOK {
		t.Fatalf("patch a demo product: %d %s", r.Status, r.Body)
	}
	if res := seed(); res.Categories != 0 || res.Products != 0 {
		t.Errorf("second seed added %d categories and %d products, want none", res.Categories, res.Products)
	}
	if n := len(listAll(t, shop, url.Values{"limit": {"100"}})); n != 52 {
		t.Errorf("after the second seed the shop lists %d products, want 52", n)
	}
	if _, got := getProduct(t, shop, "", ct.ID); got.Price != "15.50" {
		t.Errorf("the second seed reset staff's price to %s", got.Price)
	}
	r := shop.API.Do("GET", "/api/v1/categories", nil)
	var cats struct {
		Items []json.RawMessage `json:"items"`
	}
	r.Decode(t, &cats)
	if len(cats.Items) != 8 {
		t.Errorf("%d categories after seeding twice, want 8", len(cats.Items))
	}
}
