package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
)

// Publisher writes events in the caller's transaction.
type Publisher interface {
	Publish(ctx context.Context, tx *gorm.DB, events ...bus.Event) error
}

// Config tunes reservations.
type Config struct {
	// ReservationTTL is how long a reservation holds stock when the order
	// side never answers (a safety net; the saga's own deadlines are shorter).
	ReservationTTL time.Duration
	// ExpiryInterval is how often expired reservations are looked for.
	ExpiryInterval time.Duration
}

// Service holds the catalog and inventory use cases.
type Service struct {
	db  *gorm.DB
	pub Publisher
	log *slog.Logger
	cfg Config
	now func() time.Time
}

// NewService builds the use cases on the module's database handle.
func NewService(gdb *gorm.DB, pub Publisher, log *slog.Logger, cfg Config) *Service {
	if cfg.ReservationTTL <= 0 {
		cfg.ReservationTTL = 15 * time.Minute
	}
	if cfg.ExpiryInterval <= 0 {
		cfg.ExpiryInterval = 30 * time.Second
	}
	return &Service{db: gdb, pub: pub, log: log, cfg: cfg, now: time.Now}
}

var errNoProduct = httpx.NotFound("no such product")

// Product returns one product; inactive ones only to staff.
func (s *Service) Product(ctx context.Context, id string, staff bool) (Product, error) {
	if !isUUID(id) {
		return Product{}, errNoProduct
	}
	row, ok, err := productByID(ctx, s.db, id)
	if err != nil {
		return Product{}, err
	}
	if !ok || (!row.Active && !staff) {
		return Product{}, errNoProduct
	}
	return row.product(staff)
}

// Page is one page of products.
type Page struct {
	Items      []Product `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// List browses or searches the catalog.
func (s *Service) List(ctx context.Context, q, category, cursor string, limit int, staff, withHidden bool) (Page, error) {
	q = strings.TrimSpace(q)
	var errs []httpx.FieldError
	if msg := checkQuery(q); msg != "" {
		errs = append(errs, httpx.FieldError{Field: "q", Message: msg})
	}
	if category != "" && (!slugPattern.MatchString(category) || len(category) > 60) {
		errs = append(errs, httpx.FieldError{Field: "category", Message: "must be a category slug"})
	}
	if len(errs) > 0 {
		return Page{}, httpx.Invalid(errs...)
	}
	lq := listQuery{Q: q, Category: category, Limit: limit, WithHidden: staff && withHidden}
	scope := scopeOf(q, category)
	if cursor != "" {
		c, err := decodeCursor(cursor, scope)
		if err != nil {
			return Page{}, httpx.BadRequest("the cursor is not one this listing gave out")
		}
		lq.After = &c
	}
	rows, err := listProducts(ctx, s.db, lq)
	if err != nil && q != "" {
		return Page{}, searchFailure(ctx, s.db, q, err)
	}
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: make([]Product, 0, min(len(rows), limit))}
	for i, r := range rows {
		if i == limit {
			last := rows[limit-1]
			next := encodeCursor(pageCursor{Name: last.Name, Rank: last.Rank, ID: last.ID, Scope: scope})
			page.NextCursor = &next
			break
		}
		p, err := r.product(staff)
		if err != nil {
			return Page{}, err
		}
		page.Items = append(page.Items, p)
	}
	return page, nil
}

// Categories lists every category.
func (s *Service) Categories(ctx context.Context) ([]Category, error) {
	return listCategories(ctx, s.db)
}

// CreateCategory adds a category.
func (s *Service) CreateCategory(ctx context.Context, c NewCategory) (Category, error) {
	if errs := c.validate(); len(errs) > 0 {
		return Category{}, httpx.Invalid(errs...)
	}
	out := Category{ID: uuid.NewString(), Slug: c.Slug, Name: c.Name, ParentSlug: c.Parent}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := roomForACategory(ctx, tx); err != nil {
			return err
		}
		var parentID *string
		if c.Parent != nil {
			ids, unknown, err := categoryIDs(ctx, tx, []string{*c.Parent})
			if err != nil {
				return err
			}
			if len(unknown) > 0 {
				return httpx.Invalid(httpx.FieldError{Field: "parent", Message: "no category has this slug"})
			}
			parentID = &ids[0]
		}
		err := tx.Exec(`INSERT INTO categories (id, slug, name, parent_id) VALUES (?, ?, ?, ?)`, out.ID, c.Slug, c.Name, parentID).Error
		if _, dup := db.IsUniqueViolation(err); dup {
			return withField(httpx.Conflict("a category with this slug exists"), "slug", "is taken")
		}
		return err
	})
	return out, err
}

// roomForACategory refuses a category beyond maxCategoryCount. It takes the
// categories for the rest of the transaction against other creations (not
// against readers), so that two admins cannot both add the last one.
func roomForACategory(ctx context.Context, tx *gorm.DB) error {
	if err := tx.WithContext(ctx).Exec(`LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE`).Error; err != nil {
		return fmt.Errorf("lock categories: %w", err)
	}
	var n int64
	if err := tx.WithContext(ctx).Raw(`SELECT count(*) FROM categories`).Scan(&n).Error; err != nil {
		return fmt.Errorf("count categories: %w", err)
	}
	if n >= maxCategoryCount {
		return httpx.Conflict(fmt.Sprintf("the shop has %d categories, the most it keeps; file products under the existing ones", maxCategoryCount))
	}
	return nil
}

// CreateProduct adds a product with its initial stock and announces it.
func (s *Service) CreateProduct(ctx context.Context, np NewProduct) (Product, error) {
	if errs := np.validate(); len(errs) > 0 {
		return Product{}, httpx.Invalid(errs...)
	}
	id := uuid.NewString()
	stock := 0
	if np.Stock != nil {
		stock = *np.Stock
	}
	active := np.Active == nil || *np.Active
	now := s.now().UTC().Truncate(time.Microsecond)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		catIDs, unknown, err := categoryIDs(ctx, tx, np.Categories)
		if err != nil {
			return err
		}
		if len(unknown) > 0 {
			return httpx.Invalid(httpx.FieldError{Field: "categories", Message: "unknown category: " + strings.Join(unknown, ", ")})
		}
		err = tx.Exec(`INSERT INTO products (id, sku, name, description, price, active, created_at, updated_at) VALUES (?, ?, ?, ?, ?::numeric, ?, ?, ?)`,
			id, np.SKU, np.Name, np.Description, np.Price, active, now, now).Error
		if _, dup := db.IsUniqueViolation(err); dup {
			return withField(httpx.Conflict("a product with this SKU exists"), "sku", "is taken")
		}
		if err != nil {
			return fmt.Errorf("insert product: %w", err)
		}
		for _, cid := range catIDs {
			if err := tx.Exec(`INSERT INTO product_categories (product_id, category_id) VALUES (?, ?)`, id, cid).Error; err != nil {
				return fmt.Errorf("file product under category: %w", err)
			}
		}
		if err := tx.Exec(`INSERT INTO inventory (product_id, on_hand) VALUES (?, ?)`, id, stock).Error; err != nil {
			return fmt.Errorf("insert inventory: %w", err)
		}
		if err := tx.Exec(`INSERT INTO stock_movements (product_id, kind, delta, reason) VALUES (?, 'initial', ?, 'initial stock')`, id, stock).Error; err != nil {
			return fmt.Errorf("record initial stock: %w", err)
		}
		return s.pub.Publish(ctx, tx, events.ProductCreated{ProductID: id, SKU: np.SKU, Name: np.Name, Price: np.Price, CreatedAt: now})
	})
	if err != nil {
		return Product{}, err
	}
	return s.Product(ctx, id, true)
}

// UpdateProduct changes name, description, price, active flag or
// categories, and announces the change.
func (s *Service) UpdateProduct(ctx context.Context, id string, ch ProductChange) (Product, error) {
	if !isUUID(id) {
		return Product{}, errNoProduct
	}
	if errs := ch.validate(); len(errs) > 0 {
		return Product{}, httpx.Invalid(errs...)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var cur []struct {
			Name   string
			Price  string
			Active bool
		}
		if err := tx.Raw(`SELECT name, price::text AS price, active FROM products WHERE id = ? FOR UPDATE`, id).Scan(&cur).Error; err != nil {
			return fmt.Errorf("lock product: %w", err)
		}
		if len(cur) == 0 {
			return errNoProduct
		}
		name, price, active := cur[0].Name, cur[0].Price, cur[0].Active
		if ch.Name != nil {
			name = *ch.Name
		}
		if ch.Price != nil {
			price = *ch.Price
		}
		if ch.Active != nil {
			active = *ch.Active
		}
		err := tx.Exec(`UPDATE products SET name = ?, price = ?::numeric, active = ?, description = coalesce(?, description), updated_at = ? WHERE id = ?`,
			name, price, active, ch.Description, now, id).Error
		if err != nil {
			return fmt.Errorf("update product: %w", err)
		}
		if ch.Categories != nil {
			catIDs, unknown, err := categoryIDs(ctx, tx, *ch.Categories)
			if err != nil {
				return err
			}
			if len(unknown) > 0 {
				return httpx.Invalid(httpx.FieldError{Field: "categories", Message: "unknown category: " + strings.Join(unknown, ", ")})
			}
			if err := tx.Exec(`DELETE FROM product_categories WHERE product_id = ?`, id).Error; err != nil {
				return err
			}
			for _, cid := range catIDs {
				if err := tx.Exec(`INSERT INTO product_categories (product_id, category_id) VALUES (?, ?)`, id, cid).Error; err != nil {
					return err
				}
			}
		}
		return s.pub.Publish(ctx, tx, events.ProductUpdated{ProductID: id, Name: name, Price: price, Active: active, UpdatedAt: now})
	})
	if err != nil {
		return Product{}, err
	}
	return s.Product(ctx, id, true)
}

// ChangeStock restocks or corrects on-hand stock; it never lets on hand
// fall below what is reserved.
func (s *Service) ChangeStock(ctx context.Context, id string, sc StockChange) (Product, error) {
	if !isUUID(id) {
		return Product{}, errNoProduct
	}
	if errs := sc.validate(); len(errs) > 0 {
		return Product{}, httpx.Invalid(errs...)
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE inventory SET on_hand = on_hand + ?
			WHERE product_id = ? AND on_hand::bigint + ? >= reserved AND on_hand::bigint + ? <= ?`, sc.Delta, id, sc.Delta, sc.Delta, maxOnHand)
		if res.Error != nil {
			return fmt.Errorf("change stock: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			var inv []Inventory
			if err := tx.Raw(`SELECT on_hand, reserved FROM inventory WHERE product_id = ?`, id).Scan(&inv).Error; err != nil {
				return err
			}
			if len(inv) == 0 {
				return errNoProduct
			}
			if inv[0].OnHand+sc.Delta > maxOnHand {
				return httpx.Conflict(fmt.Sprintf("on hand would exceed %d: %d on hand", maxOnHand, inv[0].OnHand))
			}
			return httpx.Conflict(fmt.Sprintf("on hand would fall below what is reserved: %d on hand, %d reserved", inv[0].OnHand, inv[0].Reserved))
		}
		kind := "restock"
		if sc.Delta < 0 {
			kind = "correction"
		}
		return tx.Exec(`INSERT INTO stock_movements (product_id, kind, delta, reason) VALUES (?, ?, ?, ?)`, id, kind, sc.Delta, sc.Reason).Error
	})
	if err != nil {
		return Product{}, err
	}
	return s.Product(ctx, id, true)
}

func withField(p *httpx.Problem, field, msg string) *httpx.Problem {
	p.Errors = []httpx.FieldError{{Field: field, Message: msg}}
	return p
}

func isUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}
