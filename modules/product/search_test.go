package product_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestSearch_RanksAndUnderstandsWebSearchSyntax(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createCategory(t, shop, admin, map[string]any{"slug": "kitchen", "name": "Kitchen"})
	seed := []map[string]any{
		// The term only in the description (weight B), even twice, comes after a name match (weight A).
		{"sku": "S-1", "name": "Stoneware bowl", "description": "Hand-thrown bowl: a ceramic body under a ceramic glaze.", "categories": []string{"kitchen"}},
		{"sku": "S-2", "name": "Flower vase", "description": "Tall ceramic vase for tulips."},
		{"sku": "S-3", "name": "Ceramic coffee mug", "description": "A sturdy mug for your morning coffee.", "categories": []string{"kitchen"}},
		{"sku": "S-4", "name": "Glass carafe", "description": "Holds a litre of water."},
		{"sku": "S-5", "name": "Spiral notebook, A5", "description": "Dotted paper, 120 pages."},
		{"sku": "S-6", "name": "French press, 1 l", "description": "Brews coffee the classic way."},
		{"sku": "S-7", "name": "Garlic press", "description": "Stainless steel, a French design."},
		{"sku": "S-8", "name": "Ceramic teapot", "description": "Not for sale yet.", "active": false},
	}
	for _, p := range seed {
		p["price"] = "10.00"
		p["stock"] = 5
		createProduct(t, shop, admin, p)
	}
	search := func(q string, extra ...string) []string {
		t.Helper()
		params := url.Values{"q": {q}}
		for i := 0; i+1 < len(extra); i += 2 {
			params.Set(extra[i], extra[i+1])
		}
		return names(listAll(t, shop, params))
	}
	sameSet := func(a, b []string) bool {
		a, b = slices.Clone(a), slices.Clone(b)
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	}

	t.Run("name match ranks first", func(t *testing.T) {
		got := search("ceramic")
		if len(got) != 3 || got[0] != "Ceramic coffee mug" || !sameSet(got[1:], []string{"Stoneware bowl", "Flower vase"}) {
			t.Errorf("ceramic: %v, want the mug first, then the bowl and the vase; never the inactive teapot", got)
		}
		if got := search("coffee"); len(got) != 2 || got[0] != "Ceramic coffee mug" || got[1] != "French press, 1 l" {
			t.Errorf("coffee: %v, want the mug (name) before the French press (description)", got)
		}
	})
	t.Run("pages of a search keep the ranking", func(t *testing.T) {
		whole := search("ceramic")
		paged := names(listAll(t, shop, url.Values{"q": {"ceramic"}, "limit": {"1"}}))
		if !slices.Equal(whole, paged) {
			t.Errorf("ceramic one per page: %v, want %v", paged, whole)
		}
	})
	t.Run("excluding a word", func(t *testing.T) {
		if got := search("ceramic -vase"); !sameSet(got, []string{"Ceramic coffee mug", "Stoneware bowl"}) {
			t.Errorf("ceramic -vase: %v, want the mug and the bowl", got)
		}
	})
	t.Run("quoted phrase", func(t *testing.T) {
		if got := search(`"french press"`); !slices.Equal(got, []string{"French press, 1 l"}) {
			t.Errorf(`"french press": %v, want only the French press`, got)
		}
		got := search("french press")
		if len(got) != 2 || got[0] != "French press, 1 l" || got[1] != "Garlic press" {
			t.Errorf("french press (unquoted): %v, want the French press, then the garlic press", got)
		}
	})
	t.Run("or", func(t *testing.T) {
		if got := search("carafe or notebook"); !sameSet(got, []string{"Glass carafe", "Spiral notebook, A5"}) {
			t.Errorf("carafe or notebook: %v", got)
		}
	})
	t.Run("stemming", func(t *testing.T) {
		for q, want := range map[string]string{"notebooks": "Spiral notebook, A5", "mugs": "Ceramic coffee mug", "carafes": "Glass carafe", "brewing": "French press, 1 l"} {
			if got := search(q); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: %v, want [%s]", q, got, want)
			}
		}
	})
	t.Run("case of the query", func(t *testing.T) {
		if got := search("CERAMIC MUG"); !slices.Equal(got, []string{"Ceramic coffee mug"}) {
			t.Errorf("CERAMIC MUG: %v", got)
		}
	})
	t.Run("search within a category", func(t *testing.T) {
		if got := search("ceramic", "category", "kitchen"); len(got) != 2 || got[0] != "Ceramic coffee mug" || got[1] != "Stoneware bowl" {
			t.Errorf("ceramic in kitchen: %v, want the mug then the bowl", got)
		}
	})
	t.Run("queries without words find nothing and fail nothing", func(t *testing.T) {
		for _, q := range []string{"the", "-", `"`, "!!!", "or", "-ceramic", "a & b | c", `\`, "'", "(", "*:"} {
			r := shop.API.Do("GET", "/api/v1/products?q="+url.QueryEscape(q), nil)
			if r.Status != http.StatusOK {
				t.Errorf("q=%q: %d %s, want 200", q, r.Status, r.Body)
			}
		}
	})
}

// TestPagination_WalkWhileProductsAreAdded walks every page, browsing and
// searching, while products keep being added: no product shows up twice and
// every product that existed when the walk started is seen.
func TestPagination_WalkWhileProductsAreAdded(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	rng := rand.New(rand.NewPCG(4, 2))
	var sku atomic.Int64
	// Names spread over the alphabet and descriptions that repeat the search
	// word a varying number of times, so new products land before and after
	// the cursor in both orders, with ties in rank.
	newProduct := func() map[string]any {
		n := sku.Add(1)
		letter := 'a' + rng.IntN(26)
		desc := "A lantern."
		for range rng.IntN(3) {
			desc += " Lantern light."
		}
		return map[string]any{"sku": fmt.Sprintf("LAMP-%d", n), "name": fmt.Sprintf("%c lantern %03d", letter, n), "description": desc, "price": "5.00", "stock": 1}
	}
	for range 30 {
		createProduct(t, shop, admin, newProduct())
	}
	// Prepared up front: the generator is not safe for concurrent use.
	var pending [2][20]map[string]any
	for i := range pending {
		for j := range pending[i] {
			pending[i][j] = newProduct()
		}
	}

	walk := func(t *testing.T, params url.Values, adds [20]map[string]any) {
		existing := map[string]string{}
		for _, p := range listAll(t, shop, params) {
			existing[p.ID] = p.Name
		}
		var added atomic.Int64
		addedSignal := make(chan struct{}, len(adds))
		done := make(chan error, 1)
		go func() {
			done <- func() error {
				for _, body := range adds {
					if err := postProduct(shop.URL, admin, body); err != nil {
						return err
					}
					added.Add(1)
					addedSignal <- struct{}{}
				}
				return nil
			}()
		}()

		seen := map[string]int{}
		params = cloneValues(params)
		params.Set("limit", "7")
		for page := 0; ; page++ {
			// Make sure products are really added between pages, while the
			// inserter keeps going in parallel with the next request.
			for added.Load() < min(int64(3*page), int64(len(adds))) {
				select {
				case <-addedSignal:
				case err := <-done:
					if err != nil {
						t.Fatalf("adding products during the walk: %v", err)
					}
					done <- nil
				}
			}
			if page > 50 {
				t.Fatal("more than 50 pages")
			}
			p := listPage(t, shop, params)
			for _, item := range p.Items {
				seen[item.ID]++
				if seen[item.ID] == 2 {
					t.Errorf("%q (%s) appears twice", item.Name, item.ID)
				}
			}
			if p.NextCursor == nil {
				break
			}
			params.Set("cursor", *p.NextCursor)
		}
		if err := <-done; err != nil {
			t.Fatalf("adding products during the walk: %v", err)
		}
		if added.Load() != int64(len(adds)) {
			t.Fatalf("only %d products were added", added.Load())
		}
		for id, name := range existing {
			if seen[id] == 0 {
				t.Errorf("%q (%s) existed before the walk but was skipped", name, id)
			}
		}
		if len(existing) < 30 {
			t.Errorf("only %d products existed before the walk", len(existing))
		}
	}
	t.Run("browsing", func(t *testing.T) { walk(t, url.Values{}, pending[0]) })
	t.Run("searching", func(t *testing.T) { walk(t, url.Values{"q": {"lanterns"}}, pending[1]) })
	if n := len(listAll(t, shop, url.Values{"q": {"lantern"}, "limit": {"100"}})); n != 70 {
		t.Errorf("search finds %d lanterns in the end, want 70", n)
	}
}

// postProduct creates a product with a plain HTTP client: it runs on a
// goroutine of its own, where the test's API client must not fail the test.
func postProduct(base, token string, body map[string]any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", base+"/api/v1/products", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("create %v: status %d", body["sku"], resp.StatusCode)
	}
	return nil
}

// TestSearch_OperatorFloodsAre422NotServerErrors: PostgreSQL's tsquery parser
// keeps pending operators on a stack of 32; a run of 33 "-" (NOT) overflowed
// it and the search answered 500. Beyond the documented bound on "-" the
// search is refused with a field error; at the bound it still searches.
func TestSearch_OperatorFloodsAre422NotServerErrors(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	createProduct(t, shop, admin, map[string]any{"sku": "MUG-1", "name": "Ceramic mug", "price": "10.00", "stock": 1})
	for _, q := range []string{
		strings.Repeat("-", 33) + "mug",
		"mug " + strings.Repeat("-", 40) + " bowl",
		"mug or bowl " + strings.Repeat("- ", 31) + "vase",
		strings.Repeat("-", 199) + "x",
		strings.Repeat("-!", 40) + "x",
	} {
		r := shop.API.Do("GET", "/api/v1/products?q="+url.QueryEscape(q), nil)
		expectProblem(t, "q="+q, r, http.StatusUnprocessableEntity, "q")
	}
	// At the bound: "-" as many times as allowed, the deepest stack there is.
	atBound := "mug or bowl " + strings.Repeat("-", 20) + "mug"
	if got := names(listAll(t, shop, url.Values{"q": {atBound}})); !slices.Equal(got, []string{"Ceramic mug"}) {
		t.Errorf("q=%s: %v, want the mug (an even number of exclusions cancels out)", atBound, got)
	}
}
