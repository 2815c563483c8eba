package catalog

import (
	"context"
	"fmt"

	"github.com/modshop/modshop/modules/product/internal/demo"
)

// SeedResult counts what a seeding added.
type SeedResult struct {
	Categories int
	Products   int
}

// SeedDemo loads the demo catalog. Categories and products that exist
// already (by slug and SKU) are left as they are, so it can run any number
// of times without duplicating anything or undoing staff's changes.
func (s *Service) SeedDemo(ctx context.Context) (SeedResult, error) {
	var out SeedResult
	cat, err := demo.Load()
	if err != nil {
		return out, fmt.Errorf("demo catalog: %w", err)
	}
	for _, c := range cat.Categories {
		exists, err := categoryExists(ctx, s.db, c.Slug)
		if err != nil {
			return out, err
		}
		if exists {
			continue
		}
		if _, err := s.CreateCategory(ctx, NewCategory{Slug: c.Slug, Name: c.Name, Parent: c.Parent}); err != nil {
			return out, fmt.Errorf("demo category %s: %w", c.Slug, err)
		}
		out.Categories++
	}
	for _, p := range cat.Products {
		exists, err := productExists(ctx, s.db, p.SKU)
		if err != nil {
			return out, err
		}
		if exists {
			continue
		}
		stock := p.Stock
		created, err := s.CreateProduct(ctx, NewProduct{SKU: p.SKU, Name: p.Name, Description: p.Description, Price: p.Price, Stock: &stock, Categories: p.Categories})
		if err != nil {
			return out, fmt.Errorf("demo product %s: %w", p.SKU, err)
		}
		img, err := demo.Image(p.SKU)
		if err != nil {
			return out, fmt.Errorf("demo product %s: %w", p.SKU, err)
		}
		if _, err := s.AddImage(ctx, created.ID, img); err != nil {
			return out, fmt.Errorf("image of demo product %s: %w", p.SKU, err)
		}
		out.Products++
	}
	return out, nil
}

// Empty reports whether the catalog has no products at all.
func (s *Service) Empty(ctx context.Context) (bool, error) {
	return catalogEmpty(ctx, s.db)
}
