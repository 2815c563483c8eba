package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modshop/modshop/platform/apperr"
)

// fillCategories adds n categories straight to the table.
func fillCategories(t *testing.T, w *world, n int) {
	t.Helper()
	err := w.db.Exec(`INSERT INTO categories (id, slug, name)
		SELECT gen_random_uuid(), 'filler-' || i, 'Filler ' || i FROM generate_series(1, ?) AS i`, n).Error
	if err != nil {
		t.Fatal(err)
	}
}

func categoryCount(t *testing.T, w *world) int {
	t.Helper()
	var n int64
	if err := w.db.Raw(`SELECT count(*) FROM categories`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestCreateCategory_TheShopKeepsAtMostTheBound(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	ctx := context.Background()
	fillCategories(t, w, maxCategoryCount-1)
	if _, err := w.svc.CreateCategory(ctx, NewCategory{Slug: "last", Name: "The last one"}); err != nil {
		t.Fatalf("category %d of %d: %v", maxCategoryCount, maxCategoryCount, err)
	}
	_, err := w.svc.CreateCategory(ctx, NewCategory{Slug: "one-too-many", Name: "One too many"})
	var e *apperr.Error // answered 409 (httpx's table)
	if !errors.As(err, &e) || e.Kind != apperr.ErrConflict || !strings.Contains(e.Detail, fmt.Sprint(maxCategoryCount)) {
		t.Fatalf("category %d: %v, want 409 saying the shop keeps at most %d", maxCategoryCount+1, err, maxCategoryCount)
	}
	if n := categoryCount(t, w); n != maxCategoryCount {
		t.Fatalf("%d categories, want %d", n, maxCategoryCount)
	}
}

func TestCreateCategory_TheBoundHoldsWhenAdminsRace(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Config{})
	fillCategories(t, w, maxCategoryCount-2)
	var created atomic.Int32
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			_, err := w.svc.CreateCategory(context.Background(), NewCategory{Slug: fmt.Sprintf("racer-%d", i), Name: "Racer"})
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, apperr.ErrConflict):
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := categoryCount(t, w); created.Load() != 2 || n != maxCategoryCount {
		t.Fatalf("6 creations at once with room for 2: %d created, %d categories, want 2 and %d", created.Load(), n, maxCategoryCount)
	}
}
