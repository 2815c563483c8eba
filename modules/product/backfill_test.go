package product_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/google/uuid"

	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// TestBackfill_TheCatalogInPagesEachProductOnce: asked for a backfill,
// the product module publishes its whole catalog (inactive products too)
// in pages of bus.BackfillPageSize, each after the one before, every
// product once with its version, only the final page marked last; a
// request for another module is none of its business.
func TestBackfill_TheCatalogInPagesEachProductOnce(t *testing.T) {
	t.Parallel()
	shop := startProduct(t, func(m *moduletest.Module) { moduletest.Record[productevents.ProductsBackfilled](m.Events) })
	db, err := sql.Open("pgx", shop.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 2*bus.BackfillPageSize + 7
	if _, err := db.Exec(`INSERT INTO products.products (id, sku, name, price, active, updated_at)
		SELECT gen_random_uuid(), 'BF-' || i, 'Backfilled ' || i, 1.50, i % 10 <> 0, now() - make_interval(secs => i) FROM generate_series(1, $1) AS i`, n); err != nil {
		t.Fatal(err)
	}
	other, req := uuid.NewString(), uuid.NewString()
	if err := shop.Publish(context.Background(), bus.BackfillRequested{RequestID: other, Source: "user", Requester: "order"},
		bus.BackfillRequested{RequestID: req, Source: "product", Requester: "order"}); err != nil {
		t.Fatal(err)
	}
	last := moduletest.WaitFor(t, shop.Events, "the last page", func(ev productevents.ProductsBackfilled) bool { return ev.RequestID == req && ev.Last })
	seen := map[string]bool{}
	var pages []int
	for _, p := range moduletest.All[productevents.ProductsBackfilled](shop.Events) {
		if p.RequestID == other {
			t.Errorf("a page answers the request for the user module")
		}
		pages = append(pages, len(p.Products))
		if p.Last != (p.RequestID == last.RequestID && len(pages) == 3) {
			t.Errorf("page %d of %d products: last = %v", len(pages), len(p.Products), p.Last)
		}
		for _, s := range p.Products {
			if seen[s.ProductID] {
				t.Errorf("product %s in two pages", s.ProductID)
			}
			seen[s.ProductID] = true
			if s.Name == "" || s.Price != "1.50" || s.UpdatedAt.IsZero() {
				t.Errorf("a page carries %+v", s)
			}
		}
	}
	if len(pages) != 3 || pages[0] != bus.BackfillPageSize || pages[1] != bus.BackfillPageSize || pages[2] != 7 || len(seen) != n {
		t.Errorf("pages of %v products, %d distinct; want %d, %d and 7, %d in all", pages, len(seen), bus.BackfillPageSize, bus.BackfillPageSize, n)
	}
}
