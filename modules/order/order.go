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
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/order/internal/orders"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
)

// Name is the module's name (its migrations folder); Schema its schema.
const (
	Name   = "order"
	Schema = "orders"
)

//go:embed openapi.yaml
var openAPI []byte

// Config holds the saga's step deadlines.
type Config = orders.Config

// Deps is what the module needs from the composition root.
type Deps struct {
	DB     *gorm.DB
	Bus    *bus.Bus
	Log    *slog.Logger
	Config Config
}

// Module is the order module.
type Module struct{ svc *orders.Service }

// RegisterEvents adds the module's events to the bus registry.
func RegisterEvents(r *bus.Registry) {
	r.Register(events.OrderPlaced{}, events.OrderConfirmed{}, events.OrderCancelled{}, events.OrderRejected{},
		events.PaymentRequested{}, events.RefundRequested{})
}

// New builds the module and subscribes the saga to the events that move it.
func New(d Deps) *Module {
	m := &Module{svc: orders.NewService(d.DB, d.Bus, d.Log.With("module", Name), d.Config)}
	c := bus.Consumer{Module: Name, DB: d.DB}
	bus.Handle(d.Bus, "order.on_stock_reserved", c, func(ctx context.Context, tx *gorm.DB, ev productevents.StockReserved) error {
		return m.svc.OnStockReserved(ctx, tx, ev)
	})
	bus.Handle(d.Bus, "order.on_stock_rejected", c, func(ctx context.Context, tx *gorm.DB, ev productevents.StockRejected) error {
		return m.svc.OnStockRejected(ctx, tx, ev)
	})
	bus.Handle(d.Bus, "order.on_payment_succeeded", c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentSucceeded) error {
		return m.svc.OnPaymentSucceeded(ctx, tx, ev)
	})
	bus.Handle(d.Bus, "order.on_payment_failed", c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentFailed) error {
		return m.svc.OnPaymentFailed(ctx, tx, ev)
	})
	bus.Handle(d.Bus, "order.on_payment_refunded", c, func(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefunded) error {
		return m.svc.OnPaymentRefunded(ctx, tx, ev)
	})
	return m
}

// Name returns the module's name.
func (m *Module) Name() string { return Name }

// Schema returns the module's database schema.
func (m *Module) Schema() string { return Schema }

// OpenAPI returns the module's fragment of the OpenAPI document.
func (m *Module) OpenAPI() []byte { return openAPI }

// Routes mounts the module's endpoints under /api/v1.
func (m *Module) Routes(api *gin.RouterGroup) { m.svc.Routes(api) }

// Run cancels orders whose step is past its deadline until ctx ends.
func (m *Module) Run(ctx context.Context) { m.svc.RunDeadlines(ctx) }
