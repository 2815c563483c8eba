// Package order is the order module: orders, their lines and timelines,
// and the order saga it orchestrates (reserve stock, charge payment,
// confirm, or compensate), in schema orders. It is the face the
// composition root sees.
package order

import (
	"context"
	_ "embed"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/order/internal/orders"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/module"
)

// Name is the module's name (its migrations folder); Schema its schema.
const (
	Name   = "order"
	Schema = "orders"
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
	HandlerOnStockReserved    = "order.on_stock_reserved"
	HandlerOnStockRejected    = "order.on_stock_rejected"
	HandlerOnPaymentSucceeded = "order.on_payment_succeeded"
	HandlerOnPaymentFailed    = "order.on_payment_failed"
	HandlerOnPaymentRefunded  = "order.on_payment_refunded"
	HandlerOnRefundFailed     = "order.on_refund_failed"

	// The copies of products and customers (docs/adr/0031-copies-are-backfilled-on-request.md).
	HandlerOnProductCreated    = "order.on_product_created"
	HandlerOnProductUpdated    = "order.on_product_updated"
	HandlerOnProductBackfilled = "order.on_product_backfilled"
	HandlerOnUserRegistered    = "order.on_user_registered"
	HandlerOnUserUpdated       = "order.on_user_updated"
	HandlerOnUserBackfilled    = "order.on_user_backfilled"
)

// Definition is the order module as the composition root sees it,
// configured by cfg.
func Definition(cfg Config) module.Definition {
	return module.Definition{
		Name:    Name,
		Schema:  Schema,
		OpenAPI: openAPI,
		Paths:   []string{"/api/v1/orders", "/api/v1/shipping-methods"},
		Handlers: []string{HandlerOnStockReserved, HandlerOnStockRejected,
			HandlerOnPaymentSucceeded, HandlerOnPaymentFailed, HandlerOnPaymentRefunded, HandlerOnRefundFailed,
			HandlerOnProductCreated, HandlerOnProductUpdated, HandlerOnProductBackfilled,
			HandlerOnUserRegistered, HandlerOnUserUpdated, HandlerOnUserBackfilled},
		RegisterEvents: RegisterEvents,
		New: func(d module.Deps) (module.Instance, error) {
			return New(Deps{DB: d.DB, Bus: d.Bus, Log: d.Log, Metrics: d.Metrics, Config: cfg}), nil
		},
	}
}

// Config holds the saga's step deadlines and the link to an order's trace
// (TraceURLTemplate).
type Config = orders.Config

// ShippingMethod is one way an order reaches its customer, at a price.
type ShippingMethod = orders.ShippingMethod

// ParseShippingMethods reads MODSHOP_SHIPPING_METHODS (code=label:price,
// comma-separated; pickup is built in) and refuses what is not one.
func ParseShippingMethods(spec string) ([]ShippingMethod, error) {
	return orders.ParseShippingMethods(spec)
}

// CheckTraceURLTemplate refuses a Config.TraceURLTemplate
// (MODSHOP_TRACE_URL_TEMPLATE) that would not make a link: it must be an
// absolute http(s) URL holding {trace_id}; "" (no links) is fine.
func CheckTraceURLTemplate(tmpl string) error { return orders.CheckTraceURLTemplate(tmpl) }

// Deps is what the module needs from the composition root.
type Deps struct {
	DB  *gorm.DB
	Bus *bus.Bus
	Log *slog.Logger
	// Metrics is where the module's metrics are registered
	// (modshop_order_saga_stage_seconds); nil: nowhere.
	Metrics prometheus.Registerer
	Config  Config
}

// Module is the order module.
type Module struct{ svc *orders.Service }

// RegisterEvents adds the module's events to the bus registry.
func RegisterEvents(r *bus.Registry) {
	r.Register(events.OrderPlaced{}, events.OrderConfirmed{}, events.OrderCancelled{}, events.OrderRejected{},
		events.PaymentRequested{}, events.RefundRequested{}, bus.BackfillRequested{}, events.OrderShipped{}, events.OrderDelivered{},
		events.OrderReturned{})
}

// New builds the module and subscribes the saga to the events that move it.
func New(d Deps) *Module {
	m := &Module{svc: orders.NewService(d.DB, d.Bus, d.Log.With("module", Name), d.Config)}
	m.svc.RegisterMetrics(d.Metrics)
	c := bus.Consumer{Module: Name, DB: d.DB}
	bus.Handle(d.Bus, HandlerOnStockReserved, c, func(ctx context.Context, tx *gorm.DB, ev productevents.StockReserved) error {
		return m.svc.OnStockReserved(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerOnStockRejected, c, func(ctx context.Context, tx *gorm.DB, ev productevents.StockRejected) error {
		return m.svc.OnStockRejected(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerOnPaymentSucceeded, c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentSucceeded) error {
		return m.svc.OnPaymentSucceeded(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerOnPaymentFailed, c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentFailed) error {
		return m.svc.OnPaymentFailed(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerOnPaymentRefunded, c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefunded) error {
		return m.svc.OnPaymentRefunded(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerOnRefundFailed, c, m.svc.OnRefundFailed)
	bus.Handle(d.Bus, HandlerOnProductCreated, c, m.svc.OnProductCreated)
	bus.Handle(d.Bus, HandlerOnProductUpdated, c, m.svc.OnProductUpdated)
	bus.Handle(d.Bus, HandlerOnProductBackfilled, c, m.svc.OnProductsBackfilled)
	bus.Handle(d.Bus, HandlerOnUserRegistered, c, m.svc.OnUserRegistered)
	bus.Handle(d.Bus, HandlerOnUserUpdated, c, m.svc.OnUserUpdated)
	bus.Handle(d.Bus, HandlerOnUserBackfilled, c, m.svc.OnUsersBackfilled)
	return m
}

// Name returns the module's name.
func (m *Module) Name() string { return Name }

// Schema returns the module's database schema.
func (m *Module) Schema() string { return Schema }

// Routes mounts the module's endpoints under /api/v1.
func (m *Module) Routes(api *gin.RouterGroup) { m.svc.Routes(api) }

// Run cancels orders whose step is past its deadline, and asks for the
// backfill of a copy never filled, until ctx ends.
func (m *Module) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.svc.RunBackfills(ctx)
	}()
	m.svc.RunDeadlines(ctx)
	<-done
}
