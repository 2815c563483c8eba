package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/money"
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
	// Currency is the shop's (ISO 4217; "": money.DefaultCurrency): every
	// price is in it, and HoldCurrency keeps it from changing under them.
	Currency string
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
	cfg.Currency = money.Currency(cfg.Currency)
	return &Service{db: gdb, pub: pub, log: log, cfg: cfg, now: time.Now}
}

var errNoProduct = apperr.NotFound("no such product")

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
	p, err := row.product(staff)
	p.Currency = s.cfg.Currency
	return p, err
}

// Page is one page of products, with how many products the listing
// matches: Count exactly, or, when CountCapped, more than Count.
type Page struct {
	Items       []Product `json:"items"`
	NextCursor  *string   `json:"next_cursor"`
	Count       int       `json:"count"`
	CountCapped bool      `json:"count_capped"`
}

// CountCap is the most products a listing counts: a page says "more than
// 1,000" past it, so counting a broad search stays cheap.
const CountCap = 1000

// ListRequest is one page request of the catalog as a caller makes it.
type ListRequest struct {
	Q, Category, Sort, Cursor string
	Limit                     int
	Staff, WithHidden         bool
}

// List browses or searches the catalog in the order asked for.
func (s *Service) List(ctx context.Context, r ListRequest) (Page, error) {
	q := strings.TrimSpace(r.Q)
	var errs []apperr.FieldError
	if msg := checkQuery(q); msg != "" {
		errs = append(errs, apperr.FieldError{Field: "q", Message: msg})
	}
	if r.Category != "" && (!slugPattern.MatchString(r.Category) || len(r.Category) > 60) {
		errs = append(errs, apperr.FieldError{Field: "category", Message: "must be a category slug"})
	}
	sort, ok := sortFor(r.Sort, q)
	if !ok {
		errs = append(errs, apperr.FieldError{Field: "sort", Message: "must be one of relevance, name, price, -price, newest"})
	}
	if len(errs) > 0 {
		return Page{}, apperr.Invalid(errs...)
	}
	lq := listQuery{Q: q, Category: r.Category, Sort: sort, Limit: r.Limit, WithHidden: r.Staff && r.WithHidden}
	scope := scopeOf(q, r.Category, sort)
	if r.Cursor != "" {
		c, err := decodeCursor(r.Cursor, scope)
		if err != nil {
			return Page{}, apperr.Malformed("the cursor is not one this listing gave out")
		}
		if sort == SortRelevance && c.Tier == 0 {
			// A cursor of the ranking before tiers (ADR 0037) has none.
			return Page{}, apperr.Malformed("the cursor is not one this listing gave out")
		}
		lq.After = &c
	}
	var rows []productRow
	var n int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := planForTheseValues(tx); err != nil {
			return err
		}
		var err error
		if rows, err = listProducts(ctx, tx, lq); err != nil {
			return err
		}
		n, err = countProducts(ctx, tx, lq, CountCap)
		return err
	})
	if err != nil && q != "" {
		return Page{}, searchFailure(ctx, s.db, q, err)
	}
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: make([]Product, 0, min(len(rows), r.Limit)), Count: min(n, CountCap), CountCapped: n > CountCap}
	for i, row := range rows {
		if i == r.Limit {
			last := rows[r.Limit-1]
			c := pageCursor{ID: last.ID, Scope: scope}
			switch sort {
			case SortRelevance:
				c.Tier, c.Name = last.Tier, last.Name
			case SortName:
				c.Name = last.Name
			case SortPrice, SortPriceDesc:
				c.Price = last.Price
			case SortNewest:
				c.At = last.CreatedAt.UTC().Format(time.RFC3339Nano)
			}
			next := encodeCursor(c)
			page.NextCursor = &next
			break
		}
		p, err := row.product(r.Staff)
		if err != nil {
			return Page{}, err
		}
		p.Currency = s.cfg.Currency
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
		return Category{}, apperr.Invalid(errs...)
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
				return apperr.InvalidField("parent", "no category has this slug")
			}
			parentID = &ids[0]
		}
		err := insertCategory(tx, out, parentID)
		if errors.Is(err, errSlugTaken) {
			return apperr.Conflict("a category with this slug exists").WithField("slug", "is taken")
		}
		return err
	})
	return out, err
}

// roomForACategory refuses a category beyond maxCategoryCount. It takes the
// categories for the rest of the transaction against other creations (not
// against readers), so that two admins cannot both add the last one.
func roomForACategory(ctx context.Context, tx *gorm.DB) error {
	n, err := lockCategories(ctx, tx)
	if err != nil {
		return err
	}
	if n >= maxCategoryCount {
		return apperr.Conflict(fmt.Sprintf("the shop has %d categories, the most it keeps; file products under the existing ones", maxCategoryCount))
	}
	return nil
}

// CreateProduct adds a product with its initial stock and announces it.
func (s *Service) CreateProduct(ctx context.Context, np NewProduct) (Product, error) {
	if errs := np.validate(); len(errs) > 0 {
		return Product{}, apperr.Invalid(errs...)
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
			return apperr.InvalidField("categories", "unknown category: "+strings.Join(unknown, ", "))
		}
		err = insertProduct(tx, newProductRow{ID: id, SKU: np.SKU, Name: np.Name, Description: np.Description, Price: np.Price,
			Active: active, At: now, Stock: stock, CategoryIDs: catIDs})
		if errors.Is(err, errSKUTaken) {
			return apperr.Conflict("a product with this SKU exists").WithField("sku", "is taken")
		}
		if err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, events.ProductCreated{ProductID: id, SKU: np.SKU, Name: np.Name, Price: np.Price, Currency: s.cfg.Currency, CreatedAt: now})
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
		return Product{}, apperr.Invalid(errs...)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		cur, ok, err := lockProduct(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoProduct
		}
		name, price, active := cur.Name, cur.Price, cur.Active
		if ch.Name != nil {
			name = *ch.Name
		}
		if ch.Price != nil {
			price = *ch.Price
		}
		if ch.Active != nil {
			active = *ch.Active
		}
		if err := updateProduct(tx, id, productUpdate{Name: name, Price: price, Active: active, Description: ch.Description, At: now}); err != nil {
			return err
		}
		if ch.Categories != nil {
			catIDs, unknown, err := categoryIDs(ctx, tx, *ch.Categories)
			if err != nil {
				return err
			}
			if len(unknown) > 0 {
				return apperr.InvalidField("categories", "unknown category: "+strings.Join(unknown, ", "))
			}
			if err := setProductCategories(tx, id, catIDs); err != nil {
				return err
			}
		}
		return s.pub.Publish(ctx, tx, events.ProductUpdated{ProductID: id, Name: name, Price: price, Currency: s.cfg.Currency, Active: active, UpdatedAt: now})
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
		return Product{}, apperr.Invalid(errs...)
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		changed, err := changeOnHand(tx, id, sc.Delta)
		if err != nil {
			return err
		}
		if !changed {
			return whyStockUnchanged(tx, id, sc.Delta)
		}
		kind := "restock"
		if sc.Delta < 0 {
			kind = "correction"
		}
		return recordMovement(tx, id, kind, sc.Delta, sc.Reason)
	})
	if err != nil {
		return Product{}, err
	}
	return s.Product(ctx, id, true)
}

// whyStockUnchanged says why changeOnHand changed nothing: no such
// product, or on hand would leave its bounds.
func whyStockUnchanged(tx *gorm.DB, id string, delta int) error {
	inv, ok, err := inventoryOf(tx, id)
	if err != nil {
		return err
	}
	if !ok {
		return errNoProduct
	}
	if inv.OnHand+delta > maxOnHand {
		return apperr.Conflict(fmt.Sprintf("on hand would exceed %d: %d on hand", maxOnHand, inv.OnHand))
	}
	return apperr.Conflict(fmt.Sprintf("on hand would fall below what is reserved: %d on hand, %d reserved", inv.OnHand, inv.Reserved))
}

func isUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}
