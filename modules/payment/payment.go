// Package payment is the payment module: the ledger of payments and
// refunds in schema payments, and the payment provider it charges through
// (the built-in test-mode provider). It charges on payment.requested and
// refunds on payment.refund_requested, and answers with payment.succeeded,
// payment.failed and payment.refunded. It is the face the composition root
// sees.
package payment

import (
	"context"
	_ "embed"
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/payment/internal/ledger"
	"github.com/modshop/modshop/modules/payment/internal/provider"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/module"
)

// Name is the module's name (its migrations folder); Schema its schema.
const (
	Name   = "payment"
	Schema = "payments"
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
	HandlerCharge = "payment.charge"
	HandlerRefund = "payment.refund"
)

// Definition is the payment module as the composition root sees it,
// configured by cfg.
func Definition(cfg Config) module.Definition {
	return module.Definition{
		Name:           Name,
		Schema:         Schema,
		OpenAPI:        openAPI,
		Paths:          []string{"/api/v1/payments"},
		Handlers:       []string{HandlerCharge, HandlerRefund},
		RegisterEvents: RegisterEvents,
		New: func(d module.Deps) (module.Instance, error) {
			return New(Deps{DB: d.DB, Bus: d.Bus, Log: d.Log, Config: cfg}), nil
		},
	}
}

// Config tunes the module. Zero values take the defaults.
type Config struct {
	// TestDelay is how long the test provider takes to approve
	// pm_card_delayed (default 2s), so that a payment can outlive an
	// order's payment deadline. Keep it below ProviderTimeout, or the
	// charge times out and ends as provider_unavailable.
	TestDelay time.Duration
	// ProviderTimeout bounds each provider call (default 10s). A payment
	// or refund left 'processing' by a crashed process is taken up again
	// after 2×ProviderTimeout+10s, with the same idempotency key.
	ProviderTimeout time.Duration
	// MaxAttempts is how often a charge is tried while the provider does
	// not answer before it fails as provider_unavailable (default 5).
	MaxAttempts int
	// RetryBackoff is the wait before the first retry; it doubles, up to
	// a minute (default 1s).
	RetryBackoff time.Duration
	// PollInterval is how often the idle worker looks for due work
	// without being woken (default 5s).
	PollInterval time.Duration
	// Concurrency bounds the provider calls in flight (default 16).
	Concurrency int
	// Currency is the shop's (ISO 4217, default EUR): the currency of the
	// payments recorded before payments kept theirs.
	Currency string
}

// Deps is what the module needs from the composition root.
type Deps struct {
	DB     *gorm.DB
	Bus    *bus.Bus
	Log    *slog.Logger
	Config Config
}

// Module is the payment module.
type Module struct {
	ledger *ledger.Service
}

// RegisterEvents adds the module's events to the bus registry.
func RegisterEvents(r *bus.Registry) {
	r.Register(events.PaymentSucceeded{}, events.PaymentFailed{}, events.PaymentRefunded{}, events.PaymentRefundFailed{})
}

// New builds the module and subscribes its handlers: HandlerCharge on
// payment.requested and HandlerRefund on payment.refund_requested. The
// handlers only record what is asked, at most one payment per order and
// one refund per payment; Run carries it out through the provider.
func New(d Deps) *Module {
	delay := d.Config.TestDelay
	if delay <= 0 {
		delay = 2 * time.Second
	}
	p := provider.NewTestMode(provider.NewSQLRecords(d.DB), delay)
	svc := ledger.NewService(d.DB, d.Bus, p, d.Log.With("module", Name), ledger.Config{
		ProviderTimeout: d.Config.ProviderTimeout,
		MaxAttempts:     d.Config.MaxAttempts,
		RetryBackoff:    d.Config.RetryBackoff,
		PollInterval:    d.Config.PollInterval,
		Concurrency:     d.Config.Concurrency,
		Currency:        d.Config.Currency,
	})
	consumer := bus.Consumer{Module: Name, DB: d.DB}
	bus.Handle(d.Bus, HandlerCharge, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.PaymentRequested) error {
		return svc.RecordCharge(ctx, tx, ev)
	})
	bus.Handle(d.Bus, HandlerRefund, consumer, func(ctx context.Context, tx *gorm.DB, ev orderevents.RefundRequested) error {
		return svc.RecordRefund(ctx, tx, ev)
	})
	return &Module{ledger: svc}
}

// Name returns the module's name.
func (m *Module) Name() string { return Name }

// Schema returns the module's database schema.
func (m *Module) Schema() string { return Schema }

// Routes mounts the module's endpoints under /api/v1.
func (m *Module) Routes(api *gin.RouterGroup) { m.ledger.Routes(api) }

// Run charges and refunds what the handlers recorded, through the
// provider and outside any transaction, until ctx ends; then it waits for
// the calls in flight to finish or give their work back.
func (m *Module) Run(ctx context.Context) { m.ledger.Run(ctx) }
