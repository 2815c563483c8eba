package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// The store is the only code that touches the products schema's catalog
// tables (this file) and its stock and reservations (store_stock.go).
// Functions that take tx run in the caller's transaction.

var (
	errSlugTaken = errors.New("category slug taken")
	errSKUTaken  = errors.New("SKU taken")
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
	Images      string // JSON array, without URLs
	Rank        float64
	Tier        int // relevance tier (store_relevance.go); 0 in other orders
}

func (r productRow) product(staff bool) (Product, error) {
	p := Product{
		ID: r.ID, SKU: r.SKU, Name: r.Name, Description: r.Description, Price: r.Price, Active: r.Active,
		Available: r.OnHand - r.Reserved, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Categories: []Category{},
	}
	if err := json.Unmarshal([]byte(r.Categories), &p.Categories); err != nil {
		return Product{}, fmt.Errorf("categories of product %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(r.Images), &p.Images); err != nil {
		return Product{}, fmt.Errorf("images of product %s: %w", r.ID, err)
	}
	for i := range p.Images {
		p.Images[i].URL = imageURL(r.ID, p.Images[i].ID)
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
                  WHERE pc.product_id = p.id), '[]')::text AS categories,` + imagesJSON

// productByID reads one product. It is the hottest read of the shop (GET
// /products/{id}), so it skips gorm: one prepared statement through
// database/sql, scanned into the row's fields directly (gorm's statement
// building and reflection were a third of the request's CPU).
func productByID(ctx context.Context, gdb *gorm.DB, id string) (productRow, bool, error) {
	sqlDB, err := gdb.DB()
	if err != nil {
		return productRow{}, false, fmt.Errorf("product %s: %w", id, err)
	}
	var r productRow
	err = sqlDB.QueryRowContext(ctx, selectProductByID, id).Scan(&r.ID, &r.SKU, &r.Name, &r.Description, &r.Price, &r.Active,
		&r.CreatedAt, &r.UpdatedAt, &r.OnHand, &r.Reserved, &r.Categories, &r.Images)
	if errors.Is(err, sql.ErrNoRows) {
		return productRow{}, false, nil
	}
	if err != nil {
		return productRow{}, false, fmt.Errorf("product %s: %w", id, err)
	}
	return r, true, nil
}

const selectProductByID = selectProducts + `
		FROM products p JOIN inventory i ON i.product_id = p.id WHERE p.id = $1`

// listQuery is one page request of the catalog.
type listQuery struct {
	Q          string
	Category   string
	Sort       string // one of the sort tokens, resolved (sortFor)
	Limit      int
	After      *pageCursor
	WithHidden bool // staff may list inactive products too
}

// filter is the WHERE clause of the products a listing matches, whatever
// page it is at. categoryID is the listing's category, resolved
// (resolveCategory); "" for none.
func (q listQuery) filter(categoryID string) (string, []any) {
	where, args := q.filterBut(categoryID)
	if q.Q != "" {
		where += " AND p.search @@ websearch_to_tsquery('english', ?)"
		args = append(args, q.Q)
	}
	return where, args
}

// filterBut is filter without the search.
func (q listQuery) filterBut(categoryID string) (string, []any) {
	where := "TRUE"
	args := []any{}
	if !q.WithHidden {
		where += " AND p.active"
	}
	if q.Category != "" {
		// Filed under the category or any category below it, at any
		// depth (category_listing, migration 0008): one indexed probe.
		where += ` AND EXISTS (SELECT 1 FROM category_listing l WHERE l.category_id = ?::uuid AND l.product_id = p.id)`
		args = append(args, categoryID)
	}
	return where, args
}

// resolveCategory returns the id of the listing's category; ok is false
// when no category has its slug (the listing is then empty).
func resolveCategory(ctx context.Context, db *gorm.DB, slug string) (id string, ok bool, err error) {
	var ids []string
	if err := db.WithContext(ctx).Raw(`SELECT id FROM categories WHERE slug = ?`, slug).Scan(&ids).Error; err != nil {
		return "", false, fmt.Errorf("resolve category %s: %w", slug, err)
	}
	if len(ids) == 0 {
		return "", false, nil
	}
	return ids[0], true, nil
}

// sortKeys is, for each order but relevance, its ORDER BY and the keyset
// condition of the rows after a cursor (with the cursor's values as
// after's arguments). Each ends in the id, so ties have an order too; the
// migrations give each an index.
var sortKeys = map[string]struct {
	order, after string
	args         func(c *pageCursor) []any
}{
	SortName: {"p.name, p.id", "(p.name, p.id) > (?, ?::uuid)",
		func(c *pageCursor) []any { return []any{c.Name, c.ID} }},
	SortPrice: {"p.price, p.id", "(p.price, p.id) > (?::numeric, ?::uuid)",
		func(c *pageCursor) []any { return []any{c.Price, c.ID} }},
	SortPriceDesc: {"p.price DESC, p.id", "(p.price < ?::numeric OR (p.price = ?::numeric AND p.id > ?::uuid))",
		func(c *pageCursor) []any { return []any{c.Price, c.Price, c.ID} }},
	SortNewest: {"p.created_at DESC, p.id DESC", "(p.created_at, p.id) < (?::timestamptz, ?::uuid)",
		func(c *pageCursor) []any { return []any{c.At, c.ID} }},
}

// listProducts returns up to Limit+1 products in the listing's order
// (relevance: most relevant first, see store_relevance.go); keyset-paginated so
// that pages stay stable while products are added.
func listProducts(ctx context.Context, db *gorm.DB, q listQuery) ([]productRow, error) {
	categoryID := ""
	if q.Category != "" {
		id, ok, err := resolveCategory(ctx, db, q.Category)
		if err != nil || !ok {
			return nil, err
		}
		categoryID = id
	}
	var sql string
	var args []any
	switch {
	case categoryID != "" && q.Q == "" && q.Sort == SortName:
		// A category page: a range of category_listing in (name, id) order.
		page, pageArgs := categoryPage(q, categoryID)
		sql = selectProducts + `, 0 AS tier
			FROM (` + page + `) page
			JOIN products p ON p.id = page.id JOIN inventory i ON i.product_id = p.id
			ORDER BY p.name, p.id`
		args = pageArgs
	case q.Sort != SortRelevance:
		var where string
		where, args = q.filter(categoryID)
		keys := sortKeys[q.Sort]
		if q.After != nil {
			where += " AND " + keys.after
			args = append(args, keys.args(q.After)...)
		}
		// The page is chosen on products alone, then joined to its stock,
		// categories and images: only the rows shown pay for them.
		sql = selectProducts + `, 0 AS tier
			FROM (SELECT p.id FROM products p WHERE ` + where + ` ORDER BY ` + keys.order + ` LIMIT ?) page
			JOIN products p ON p.id = page.id JOIN inventory i ON i.product_id = p.id
			ORDER BY ` + keys.order
		args = append(args, q.Limit+1)
	default:
		var page string
		page, args = relevancePage(q, categoryID)
		sql = selectProducts + `, page.tier
			FROM (` + page + `) page
			JOIN products p ON p.id = page.id JOIN inventory i ON i.product_id = p.id
			ORDER BY page.tier, p.name, p.id`
	}
	var rows []productRow
	if err := db.WithContext(ctx).Raw(sql, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list products: %w", err)
	}
	return rows, nil
}

// countProducts counts the products a listing matches, up to atMost+1:
// counting stops there, so a broad search costs at most that many index
// entries however large the catalog.
func countProducts(ctx context.Context, db *gorm.DB, q listQuery, atMost int) (int, error) {
	categoryID := ""
	if q.Category != "" {
		id, ok, err := resolveCategory(ctx, db, q.Category)
		if err != nil || !ok {
			return 0, err
		}
		categoryID = id
	}
	sql := `SELECT count(*) FROM (SELECT 1 FROM products p WHERE %s LIMIT ?) matched`
	where, args := q.filter(categoryID)
	if categoryID != "" && q.Q == "" {
		sql = `SELECT count(*) FROM (SELECT 1 FROM category_listing p WHERE %s LIMIT ?) matched`
		where, args = categoryFilter(q, categoryID)
	}
	var n int
	err := db.WithContext(ctx).Raw(fmt.Sprintf(sql, where), append(args, atMost+1)...).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count products: %w", err)
	}
	return n, nil
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

// lockCategories takes the categories for the rest of tx against other
// creations (not against readers) and counts them.
func lockCategories(ctx context.Context, tx *gorm.DB) (int64, error) {
	if err := tx.WithContext(ctx).Exec(`LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE`).Error; err != nil {
		return 0, fmt.Errorf("lock categories: %w", err)
	}
	var n int64
	if err := tx.WithContext(ctx).Raw(`SELECT count(*) FROM categories`).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count categories: %w", err)
	}
	return n, nil
}

// insertCategory adds c under parentID (nil for none), and its rows of
// the category closure: itself and every category above it; errSlugTaken
// when its slug is.
func insertCategory(tx *gorm.DB, c Category, parentID *string) error {
	err := tx.Exec(`INSERT INTO categories (id, slug, name, parent_id) VALUES (?, ?, ?, ?)`, c.ID, c.Slug, c.Name, parentID).Error
	if _, dup := db.IsUniqueViolation(err); dup {
		return errSlugTaken
	}
	if err != nil {
		return err
	}
	err = tx.Exec(`INSERT INTO category_closure (ancestor_id, descendant_id, depth)
		SELECT ?::uuid, ?::uuid, 0
		UNION ALL
		SELECT ancestor_id, ?::uuid, depth + 1 FROM category_closure WHERE descendant_id = ?::uuid`, c.ID, c.ID, c.ID, parentID).Error
	if err != nil {
		return fmt.Errorf("category closure: %w", err)
	}
	return nil
}

// categoryExists reports whether a category has the slug.
func categoryExists(ctx context.Context, db *gorm.DB, slug string) (bool, error) {
	var n int64
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM categories WHERE slug = ?`, slug).Scan(&n).Error; err != nil {
		return false, err
	}
	return n > 0, nil
}

// newProductRow is a product to insert, with its initial stock and the
// categories it is filed under.
type newProductRow struct {
	ID, SKU, Name, Description, Price string
	Active                            bool
	At                                time.Time
	Stock                             int
	CategoryIDs                       []string
}

// insertProduct writes a new product, its categories, its inventory and
// the initial stock's movement; errSKUTaken when its SKU is.
func insertProduct(tx *gorm.DB, p newProductRow) error {
	err := tx.Exec(`INSERT INTO products (id, sku, name, description, price, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?::numeric, ?, ?, ?)`,
		p.ID, p.SKU, p.Name, p.Description, p.Price, p.Active, p.At, p.At).Error
	if _, dup := db.IsUniqueViolation(err); dup {
		return errSKUTaken
	}
	if err != nil {
		return fmt.Errorf("insert product: %w", err)
	}
	for _, cid := range p.CategoryIDs {
		if err := tx.Exec(`INSERT INTO product_categories (product_id, category_id) VALUES (?, ?)`, p.ID, cid).Error; err != nil {
			return fmt.Errorf("file product under category: %w", err)
		}
	}
	if err := tx.Exec(`INSERT INTO inventory (product_id, on_hand) VALUES (?, ?)`, p.ID, p.Stock).Error; err != nil {
		return fmt.Errorf("insert inventory: %w", err)
	}
	if err := tx.Exec(`INSERT INTO stock_movements (product_id, kind, delta, reason) VALUES (?, 'initial', ?, 'initial stock')`, p.ID, p.Stock).Error; err != nil {
		return fmt.Errorf("record initial stock: %w", err)
	}
	return nil
}

// productExists reports whether a product has the SKU.
func productExists(ctx context.Context, db *gorm.DB, sku string) (bool, error) {
	var n int64
	if err := db.WithContext(ctx).Raw(`SELECT count(*) FROM products WHERE sku = ?`, sku).Scan(&n).Error; err != nil {
		return false, err
	}
	return n > 0, nil
}

// catalogEmpty reports whether there are no products at all.
func catalogEmpty(ctx context.Context, db *gorm.DB) (bool, error) {
	var n int64
	err := db.WithContext(ctx).Raw(`SELECT count(*) FROM (SELECT 1 FROM products LIMIT 1) t`).Scan(&n).Error
	return n == 0, err
}

// currentProduct is what an update of a product starts from.
type currentProduct struct {
	Name   string
	Price  string
	Active bool
}

// lockProduct reads a product for update in tx; ok is false if it does
// not exist.
func lockProduct(tx *gorm.DB, id string) (currentProduct, bool, error) {
	var cur []currentProduct
	if err := tx.Raw(`SELECT name, price::text AS price, active FROM products WHERE id = ? FOR UPDATE`, id).Scan(&cur).Error; err != nil {
		return currentProduct{}, false, fmt.Errorf("lock product: %w", err)
	}
	if len(cur) == 0 {
		return currentProduct{}, false, nil
	}
	return cur[0], true, nil
}

// productUpdate is a product's new name, price and active flag, and its
// description when it changes (nil keeps it).
type productUpdate struct {
	Name, Price string
	Active      bool
	Description *string
	At          time.Time
}

func updateProduct(tx *gorm.DB, id string, u productUpdate) error {
	err := tx.Exec(`UPDATE products SET name = ?, price = ?::numeric, active = ?, description = coalesce(?, description), updated_at = ? WHERE id = ?`,
		u.Name, u.Price, u.Active, u.Description, u.At, id).Error
	if err != nil {
		return fmt.Errorf("update product: %w", err)
	}
	return nil
}

// setProductCategories files a product under exactly the categories ids.
func setProductCategories(tx *gorm.DB, productID string, ids []string) error {
	if err := tx.Exec(`DELETE FROM product_categories WHERE product_id = ?`, productID).Error; err != nil {
		return err
	}
	for _, cid := range ids {
		if err := tx.Exec(`INSERT INTO product_categories (product_id, category_id) VALUES (?, ?)`, productID, cid).Error; err != nil {
			return err
		}
	}
	return nil
}

// parseSearch parses a search text alone, to tell whether PostgreSQL's
// parser refuses it.
func parseSearch(ctx context.Context, db *gorm.DB, q string) error {
	var n int
	return db.WithContext(ctx).Raw(`SELECT numnode(websearch_to_tsquery('english', ?))`, q).Scan(&n).Error
}
