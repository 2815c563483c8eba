package product_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// Relevance is tiered (ADR 0037): products whose name or SKU holds the
// whole search, by name; then those that need their description to match,
// by name.
func TestSearch_NameMatchesFirstThenDescriptionMatchesEachByName(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	for _, p := range []map[string]any{
		// Only in the description, however often: the second tier. Names
		// sort before every name match, so that order by name alone fails.
		{"sku": "D-1", "name": "Apron", "description": "Kettle kettle kettle: for a kettle lover."},
		{"sku": "D-2", "name": "Bowl", "description": "Goes with the kettle."},
		// In the name: the first tier, by name whatever the description says.
		{"sku": "N-1", "name": "Zinc kettle", "description": "A kettle, a kettle, a kettle."},
		{"sku": "N-2", "name": "Copper kettle"},
		{"sku": "N-3", "name": "Steel kettle", "description": "Boils water."},
		// The SKU counts as the name (searched unstemmed).
		{"sku": "LID-9", "name": "Spare top"},
		{"sku": "L-1", "name": "Pot lid"},
		{"sku": "L-2", "name": "Acorn", "description": "A lid for pots."},
		// Both words only together with the description: second tier.
		{"sku": "M-1", "name": "Oak tray", "description": "Carries a kettle."},
		// Nothing to do with kettles.
		{"sku": "X-1", "name": "Teapot", "description": "Porcelain."},
	} {
		p["price"], p["stock"] = "10.00", 1
		createProduct(t, shop, admin, p)
	}
	search := func(q string, limit string) []string {
		t.Helper()
		return names(listAll(t, shop, url.Values{"q": {q}, "limit": {limit}}))
	}
	want := []string{"Copper kettle", "Steel kettle", "Zinc kettle", "Apron", "Bowl", "Oak tray"}
	for _, limit := range []string{"100", "1", "2", "3", "4"} {
		if got := search("kettles", limit); !slices.Equal(got, want) {
			t.Errorf("kettles, %s a page: %v, want %v", limit, got, want)
		}
	}
	if got := search("lids", "1"); !slices.Equal(got, []string{"Pot lid", "Spare top", "Acorn"}) {
		t.Errorf("lids: %v, want the pot lid and the spare top (its SKU), then the acorn", got)
	}
	// Two words: the name must hold both to be in the first tier.
	if got := search("oak kettle", "100"); !slices.Equal(got, []string{"Oak tray"}) {
		t.Errorf("oak kettle: %v, want [Oak tray]", got)
	}
	if got := search("copper kettle", "100"); !slices.Equal(got, []string{"Copper kettle"}) {
		t.Errorf("copper kettle: %v, want [Copper kettle]", got)
	}
	// An excluded word excludes wherever it is, in either tier.
	if got := search("kettle -boils -lover", "100"); !slices.Equal(got, []string{"Copper kettle", "Zinc kettle", "Bowl", "Oak tray"}) {
		t.Errorf("kettle -boils -lover: %v", got)
	}
	// A phrase in the name is a name match.
	if got := search(`"copper kettle" or lover`, "1"); !slices.Equal(got, []string{"Copper kettle", "Apron"}) {
		t.Errorf(`"copper kettle" or lover: %v, want the copper kettle, then the apron`, got)
	}
}

// A walk across the tiers sees every product once, even when products are
// added on both sides of the cursor, in both tiers, between pages.
func TestSearch_CursorsAreStableAcrossTiers(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	add := func(sku, name, desc string) {
		createProduct(t, shop, admin, map[string]any{"sku": sku, "name": name, "description": desc, "price": "3.00", "stock": 1})
	}
	add("A-1", "Cup b", "")
	add("A-2", "Cup d", "")
	add("B-1", "Saucer b", "For a cup.")
	add("B-2", "Saucer d", "For a cup.")

	params := url.Values{"q": {"cup"}, "limit": {"1"}}
	var seen []string
	for page := 0; page < 20; page++ {
		p := listPage(t, shop, params)
		for _, it := range p.Items {
			seen = append(seen, it.Name)
		}
		switch len(seen) {
		case 1: // in tier 1, after "Cup b": one before the cursor, one after
			add("A-3", "Cup a", "")
			add("A-4", "Cup c", "")
		case 4: // in tier 2, after "Saucer b": new ones in both tiers
			add("A-5", "Cup e", "")
			add("B-3", "Saucer a", "For a cup.")
			add("B-4", "Saucer c", "For a cup.")
		}
		if p.NextCursor == nil {
			break
		}
		params.Set("cursor", *p.NextCursor)
	}
	want := []string{"Cup b", "Cup c", "Cup d", "Saucer b", "Saucer c", "Saucer d"}
	if !slices.Equal(seen, want) {
		t.Errorf("walk: %v, want %v (what was added behind the cursor is not seen, what was added ahead is)", seen, want)
	}
}

// A search cursor from before the tiers (it held a rank, no tier) is refused
// as any cursor the listing did not give out, not read as a first-tier one.
func TestSearch_ARankCursorOfTheOldOrderIs400(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	for _, sku := range []string{"C-1", "C-2"} {
		createProduct(t, shop, admin, map[string]any{"sku": sku, "name": "Cup " + sku, "price": "3.00"})
	}
	p := listPage(t, shop, url.Values{"q": {"cup"}, "limit": {"1"}})
	if p.NextCursor == nil {
		t.Fatal("no next page")
	}
	old, err := json.Marshal(map[string]any{"r": 0.6, "i": p.Items[0].ID, "s": cursorScope(t, *p.NextCursor)})
	must(t, err)
	for _, c := range []string{base64.RawURLEncoding.EncodeToString(old), forgeTier(t, *p.NextCursor, 3)} {
		r := shop.API.Do("GET", "/api/v1/products?"+url.Values{"q": {"cup"}, "cursor": {c}}.Encode(), nil)
		expectProblem(t, "an old rank cursor", r, http.StatusBadRequest, "")
	}
}

// forgeTier returns cursor with its tier changed.
func forgeTier(t testing.TB, cursor string, tier int) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(raw, &c))
	c["k"] = tier
	raw, err = json.Marshal(c)
	must(t, err)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// The category closure (migration 0008) is kept as categories are added:
// a product filed under a category made after its ancestors is listed
// under each of them, and the closure holds exactly the pairs of the tree.
func TestCategoryClosure_KeptAsCategoriesAreAdded(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "home", "name": "Home"})
	createCategory(t, shop, admin, map[string]any{"slug": "kitchen", "name": "Kitchen", "parent": "home"})
	createProduct(t, shop, admin, map[string]any{"sku": "K-1", "name": "Ladle", "price": "4.00", "categories": []string{"kitchen"}})
	// Added later, below what exists, and a second root.
	createCategory(t, shop, admin, map[string]any{"slug": "knives", "name": "Knives", "parent": "kitchen"})
	createCategory(t, shop, admin, map[string]any{"slug": "paring", "name": "Paring knives", "parent": "knives"})
	createCategory(t, shop, admin, map[string]any{"slug": "garden", "name": "Garden"})
	createProduct(t, shop, admin, map[string]any{"sku": "K-2", "name": "Paring knife", "price": "6.00", "categories": []string{"paring", "garden"}})

	for cat, want := range map[string][]string{
		"home":    {"Ladle", "Paring knife"},
		"kitchen": {"Ladle", "Paring knife"},
		"knives":  {"Paring knife"},
		"paring":  {"Paring knife"},
		"garden":  {"Paring knife"},
	} {
		if got := names(listAll(t, shop, url.Values{"category": {cat}})); !slices.Equal(got, want) {
			t.Errorf("category=%s lists %v, want %v", cat, got, want)
		}
		if got := names(listAll(t, shop, url.Values{"category": {cat}, "q": {"knife"}})); !slices.Equal(got, want[len(want)-1:]) {
			t.Errorf("category=%s, q=knife lists %v, want [Paring knife]", cat, got)
		}
	}

	db := testkit.OpenSQL(t, shop.DatabaseURL)
	rows, err := db.Query(`SELECT a.slug || '>' || d.slug || ':' || cc.depth FROM products.category_closure cc
		JOIN products.categories a ON a.id = cc.ancestor_id JOIN products.categories d ON d.id = cc.descendant_id ORDER BY 1`)
	must(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		must(t, rows.Scan(&s))
		got = append(got, s)
	}
	must(t, rows.Err())
	want := []string{
		"garden>garden:0",
		"home>home:0", "home>kitchen:1", "home>knives:2", "home>paring:3",
		"kitchen>kitchen:0", "kitchen>knives:1", "kitchen>paring:2",
		"knives>knives:0", "knives>paring:1",
		"paring>paring:0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("closure:\n%v\nwant\n%v", got, want)
	}
}

// A category page (category_listing, migration 0008) follows every change
// of what it shows: a product renamed moves in the order, one made
// inactive leaves the public page (not the staff's), one filed elsewhere
// leaves the old categories and joins the new ones, in the same request.
func TestCategoryPage_FollowsRenamesHidingAndRefiling(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "home", "name": "Home"})
	createCategory(t, shop, admin, map[string]any{"slug": "kitchen", "name": "Kitchen", "parent": "home"})
	createCategory(t, shop, admin, map[string]any{"slug": "garden", "name": "Garden", "parent": "home"})
	createCategory(t, shop, admin, map[string]any{"slug": "toys", "name": "Toys"})
	ladle := createProduct(t, shop, admin, map[string]any{"sku": "P-1", "name": "Ladle", "price": "4.00", "categories": []string{"kitchen"}})
	createProduct(t, shop, admin, map[string]any{"sku": "P-2", "name": "Kettle", "price": "4.00", "categories": []string{"kitchen"}})
	rake := createProduct(t, shop, admin, map[string]any{"sku": "P-3", "name": "Rake", "price": "4.00", "categories": []string{"garden", "kitchen"}})
	patch := func(id string, body map[string]any) {
		t.Helper()
		if r := shop.API.Do("PATCH", "/api/v1/products/"+id, body, testkit.Bearer(admin)); r.Status != http.StatusOK {
			t.Fatalf("PATCH %s: %d %s", id, r.Status, r.Body)
		}
	}
	check := func(when string, want map[string][]string, opts ...testkit.Option) {
		t.Helper()
		for cat, w := range want {
			for _, limit := range []string{"1", "100"} {
				got := names(listAll(t, shop, url.Values{"category": {cat}, "limit": {limit}}, opts...))
				if !slices.Equal(got, w) {
					t.Errorf("%s: category=%s (%s a page) lists %v, want %v", when, cat, limit, got, w)
				}
			}
			page := listPage(t, shop, url.Values{"category": {cat}}, opts...)
			if page.Count != len(w) {
				t.Errorf("%s: category=%s counts %d, want %d", when, cat, page.Count, len(w))
			}
		}
	}
	check("at first", map[string][]string{"home": {"Kettle", "Ladle", "Rake"}, "kitchen": {"Kettle", "Ladle", "Rake"}, "garden": {"Rake"}, "toys": nil})

	patch(ladle.ID, map[string]any{"name": "Apple corer"})
	check("renamed", map[string][]string{"home": {"Apple corer", "Kettle", "Rake"}, "kitchen": {"Apple corer", "Kettle", "Rake"}})

	patch(ladle.ID, map[string]any{"active": false})
	check("hidden", map[string][]string{"home": {"Kettle", "Rake"}, "kitchen": {"Kettle", "Rake"}})
	if got := names(listAll(t, shop, url.Values{"category": {"kitchen"}, "include_inactive": {"true"}}, testkit.Bearer(admin))); !slices.Equal(got, []string{"Apple corer", "Kettle", "Rake"}) {
		t.Errorf("staff, hidden: kitchen lists %v, want the hidden corer too", got)
	}

	patch(rake.ID, map[string]any{"categories": []string{"garden"}})
	check("rake out of the kitchen", map[string][]string{"home": {"Kettle", "Rake"}, "kitchen": {"Kettle"}, "garden": {"Rake"}})
	patch(rake.ID, map[string]any{"categories": []string{"toys"}})
	check("rake among the toys", map[string][]string{"home": {"Kettle"}, "kitchen": {"Kettle"}, "garden": nil, "toys": {"Rake"}})
}
