package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// productRow is one product as read from the database.
type productRow struct {
	ID          string
	SKU         string
	Name        string
	Description string
	Price       string
	Active      bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	OnHand      int
	Reserved    int
	Categories  string // JSON array
	Rank        float64
}

func (r productRow) product(staff bool) (Product, error) {
	p := Product{
		ID: r.ID, SKU: r.SKU, Name: r.Name, Description: r.Description, Price: r.Price, Active: r.Active,
		Available: r.OnHand - r.Reserved, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Categories: []Category{},
	}
	if err := json.Unmarshal([]byte(r.Categories), &p.Categories); err != nil {
		return Product{}, fmt.Errorf("categories of product %s: %w", r.ID, err)
	}
	if staff {
		p.Inventory = &Inventory{OnHand: r.OnHand, Reserved: r.Reserved}
	}
	return p, nil
}

const selectProducts = `
SELECT p.id, p.sku, p.name, p.description, p.price::text AS price, p.active, p.created_at, p.updated_at,
       i.on_hand, i.reserved,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'slug', c.slug, 'name', c.name) ORDER BY c.slug)
                   FROM product_categories pc JOIN categories c ON c.id = pc.category_id
                  WHERE pc.product_id = p.id), '[]')::text AS categories`

func productByID(ctx context.Context, db *gorm.DB, id string) (productRow, bool, error) {
	var rows []productRow
	err := db.WithContext(ctx).Raw(selectProducts+`, 0::float8 AS rank
		FROM products p JOIN inventory i ON i.product_id = p.id WHERE p.id = ?`, id).Scan(&rows).Error
	if err != nil {
		return productRow{}, false, fmt.Errorf("product %s: %w", id, err)
	}
	if len(rows) == 0 {
		return productRow{}, false, nil
	}
	return rows[0], true, nil
}

// listQuery is one page request of the catalog.
type listQuery struct {
	Q          string
	Category   string
	Limit      int
	After      *pageCursor
	WithHidden bool // staff may list inactive products too
}

// listProducts returns up to Limit+1 products: by name when browsing, by
// relevance when searching; keyset-paginated so that pages stay stable
// while products are added.
func listProducts(ctx context.Context, db *gorm.DB, q listQuery) ([]productRow, error) {
	where := "TRUE"
	args := []any{}
	if !q.WithHidden {
		where += " AND p.active"
	}
	if q.Category != "" {
		// The category and every category below it, at any depth.
		where += ` AND EXISTS (
			WITH RECURSIVE tree AS (
				SELECT id FROM categories WHERE slug = ?
				UNION SELECT c.id FROM categories c JOIN tree ON c.parent_id = tree.id)
			SELECT 1 FROM product_categories pc WHERE pc.product_id = p.id AND pc.category_id IN (SELECT id FROM tree))`
		args = append(args, q.Category)
	}
	var sql string
	if q.Q == "" {
		if q.After != nil {
			where += " AND (p.name, p.id) > (?, ?::uuid)"
			args = append(args, q.After.Name, q.After.ID)
		}
		sql = selectProducts + `, 0::float8 AS rank
			FROM products p JOIN inventory i ON i.product_id = p.id
			WHERE ` + where + ` ORDER BY p.name, p.id LIMIT ?`
	} else {
		rank := "ts_rank(p.search, websearch_to_tsquery('english', ?))::float8"
		rankArgs := []any{q.Q}
		where += " AND p.search @@ websearch_to_tsquery('english', ?)"
		args = append(args, q.Q)
		if q.After != nil {
			where += " AND (" + rank + " < ? OR (" + rank + " = ? AND p.id > ?::uuid))"
			args = append(args, q.Q, q.After.Rank, q.Q, q.After.Rank, q.After.ID)
		}
		sql = selectProducts + `, ` + rank + ` AS rank
			FROM products p JOIN inventory i ON i.product_id = p.id
			WHERE ` + where + ` ORDER BY rank DESC, p.id LIMIT ?`
		args = append(rankArgs, args...)
	}
	args = append(args, q.Limit+1)
	var rows []productRow
	if err := db.WithContext(ctx).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return rows, nil
}

type categoryRow struct {
	ID         string
	Slug       string
	Name       string
	ParentSlug *string
}

func listCategories(ctx context.Context, db *gorm.DB) ([]Category, error) {
	var rows []categoryRow
	err := db.WithContext(ctx).Raw(`SELECT c.id, c.slug, c.name, p.slug AS parent_slug
		FROM categories c LEFT JOIN categories p ON p.id = c.parent_id ORDER BY c.name, c.slug`).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list categories: %w", err)
	}
	out := make([]Category, len(rows))
	for i, r := range rows {
		out[i] = Category{ID: r.ID, Slug: r.Slug, Name: r.Name, ParentSlug: r.ParentSlug}
	}
	return out, nil
}

// categoryIDs resolves slugs; the second result lists unknown ones.
func categoryIDs(ctx context.Context, tx *gorm.DB, slugs []string) ([]string, []string, error) {
	if len(slugs) == 0 {
		return nil, nil, nil
	}
	var rows []categoryRow
	if err := tx.WithContext(ctx).Raw(`SELECT id, slug FROM categories WHERE slug IN ?`, slugs).Scan(&rows).Error; err != nil {
		return nil, nil, fmt.Errorf("resolve categories: %w", err)
	}
	known := map[string]string{}
	for _, r := range rows {
		known[r.Slug] = r.ID
	}
	var ids, unknown []string
	seen := map[string]bool{}
	for _, s := range slugs {
		if seen[s] {
			continue
		}
		seen[s] = true
		if id, ok := known[s]; ok {
			ids = append(ids, id)
		} else {
			unknown = append(unknown, s)
		}
	}
	return ids, unknown, nil
}
