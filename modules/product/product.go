// Package product is the product module: categories, the catalog with
// full-text search, inventory and the stock reservations of the order saga,
// in schema products. It is the face the composition root sees.
package product

import (
	"context"
	_ "embed"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/modules/product/internal/catalog"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/module"
)

// Name is the module's name (its migrations folder); Schema its schema.
const (
	Name   = "product"
	Schema = "products"
)

//go:embed openapi.yaml
var openAPI []byte

// The module's bus handlers. A handler's name is its consumer group's
// durable id: offsets, inboxes, dead letters and RabbitMQ queue names
// keep it, so renaming one in code alone starts a new group that replays
// what the topic still holds (what a rename takes: docs/bus.md,
// "Renaming a handler"). New handlers are named
// "<module>.on_<event>"; these keep the names they were first given.
const (
	HandlerReserveStock    = "product.reserve_stock"
	HandlerCommitStock     = "product.commit_stock"
	HandlerReleaseOnCancel = "product.release_on_cancel"
	HandlerReleaseOnReject = "product.release_on_reject"
	// HandlerOnBackfillRequested publishes the catalog, a page at a time,
	// for a copy of it that is new or rebuilt (bus.AnswerBackfills).
	HandlerOnBackfillRequested = "product.on_backfill_requested"
	HandlerOnOrderReturned     = "product.on_order_returned"
)

// Definition is the product module as the composition root sees it,
// configured by cfg.
func Definition(cfg Config) module.Definition {
	return module.Definition{
		Name:    Name,
		Schema:  Schema,
		OpenAPI: openAPI,
		Paths:   []string{"/api/v1/products", "/api/v1/categories"},
		Handlers: []string{HandlerReserveStock, HandlerCommitStock, HandlerReleaseOnCancel, HandlerReleaseOnReject,
			HandlerOnBackfillRequested, HandlerOnOrderReturned},
		RegisterEvents: RegisterEvents,
		New: func(d module.Deps) (module.Instance, error) {
			m := New(Deps{DB: d.DB, Bus: d.Bus, Log: d.Log, Config: cfg})
			ctx, cancel := context.WithTimeout(context.Background(), holdCurrencyTimeout)
			defer cancel()
			if err := m.svc.HoldCurrency(ctx); err != nil {
				return nil, err
			}
			return m, nil
		},
	}
}

// holdCurrencyTimeout bounds the check of the catalog's currency at start
// (a short transaction; longer only while replicas start together).
const holdCurrencyTimeout = 30 * time.Second

// Config tunes reservations and holds the shop's currency.
type Config = catalog.Config

// SeedResult counts what a demo seeding added.
type SeedResult = catalog.SeedResult

// Deps is what the module needs from the composition root.
type Deps struct {
	DB     *gorm.DB
	Bus    *bus.Bus
	Log    *slog.Logger
	Config Config
}

// Module is the product module.
type Module struct {
	svc *catalog.Service
	db  *gorm.DB
	bus *bus.Bus
}

// RegisterEvents adds the module's events to the bus registry.
func RegisterEvents(r *bus.Registry) {
	r.Register(events.ProductCreated{}, events.ProductUpdated{}, events.StockReserved{},
		events.StockRejected{}, events.StockReleased{}, events.StockCommitted{}, events.ProductsBackfilled{},
		bus.BackfillRequested{})
}

// New builds the module and subscribes its handlers to the order saga's
// events: reserve on order.placed, sell on order.confirmed, release on
// order.cancelled and order.rejected, restock on order.returned. Each is
// idempotent per order (per return for order.returned).
func New(d Deps) *Module {
	m := &Module{svc: catalog.NewService(d.DB, d.Bus, d.Log.With("module", Name), d.Config), db: d.DB, bus: d.Bus}
	// Stock handlers lock product rows that every order shares, each
	// message in product-id order. They run in the bus's batch
	// transactions: a later message of a batch that would wait on a row
	// lock has the batch commit first (see checkpoint in platform/bus), so
	// batches that reserve and sell the same products do not deadlock.
	consumer := bus.Consumer{Module: Name, DB: d.DB}
	bus.Handle(d.Bus, HandlerReserveStock, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.OrderPlaced) error {
		return m.svc.Reserve(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerCommitStock, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.OrderConfirmed) error {
		return m.svc.Commit(ctx, tx, ev.OrderID)
	})
	bus.Handle(d.Bus, HandlerReleaseOnCancel, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.OrderCancelled) error {
		return m.svc.Release(ctx, tx, ev.OrderID, "cancelled")
	})
	bus.Handle(d.Bus, HandlerReleaseOnReject, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.OrderRejected) error {
		return m.svc.Release(ctx, tx, ev.OrderID, "rejected")
	})
	bus.AnswerBackfills(d.Bus, HandlerOnBackfillRequested, Name, consumer, m.svc.BackfillPage)
	bus.Handle(d.Bus, HandlerOnOrderReturned, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.OrderReturned) error {
		return m.svc.Restock(ctx, tx, ev)
	})
	return m
}

// Name returns the module's name.
func (m *Module) Name() string { return Name }

// Schema returns the module's database schema.
func (m *Module) Schema() string { return Schema }

// Routes mounts the module's endpoints under /api/v1.
func (m *Module) Routes(api *gin.RouterGroup) { m.svc.Routes(api) }

// Run does the module's background work (releasing expired reservations)
// until ctx ends.
func (m *Module) Run(ctx context.Context) { m.svc.RunExpiry(ctx) }

// SeedDemo loads the demo catalog; it adds only what is missing.
func (m *Module) SeedDemo(ctx context.Context) (SeedResult, error) { return m.svc.SeedDemo(ctx) }

// CatalogEmpty reports whether there are no products yet.
func (m *Module) CatalogEmpty(ctx context.Context) (bool, error) { return m.svc.Empty(ctx) }

// ReleaseExpired releases reservations past their expiry now.
func (m *Module) ReleaseExpired(ctx context.Context) (int, error) {
	return m.svc.ReleaseExpired(ctx, 1000)
}
