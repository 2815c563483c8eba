package product_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
)

// TestSeedDemo_EveryProductHasItsPicture: the demo catalog's products come
// with their own small pictures, embedded, served by the shop.
func TestSeedDemo_EveryProductHasItsPicture(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	if _, err := shop.module.SeedDemo(context.Background()); err != nil {
		t.Fatalf("seed the demo catalog: %v", err)
	}
	all := listAll(t, shop, url.Values{"limit": {"100"}})
	if len(all) != 52 {
		t.Fatalf("%d demo products, want 52", len(all))
	}
	seen := map[int]bool{}
	for i, p := range all {
		if len(p.Images) != 1 {
			t.Errorf("demo product %s has %d images, want 1", p.SKU, len(p.Images))
			continue
		}
		im := p.Images[0]
		if im.Alt != p.Name || im.Width != 400 || im.Height != 300 {
			t.Errorf("demo product %s image = %+v, want 400x300 with the product's name as alt", p.SKU, im)
		}
		if i%10 != 0 {
			continue // serving is the same for all; a few show it
		}
		r := shop.API.Do("GET", im.URL, nil)
		if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || len(r.Body) > 8<<10 {
			t.Errorf("GET %s: %d %s, %d bytes, want a PNG of a few KB", im.URL, r.Status, r.Header.Get("Content-Type"), len(r.Body))
		}
		seen[len(r.Body)] = true
	}
	if len(seen) < 2 {
		t.Errorf("the demo pictures served are all alike")
	}
}
