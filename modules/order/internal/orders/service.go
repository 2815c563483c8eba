package orders

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/cursor"
	"github.com/modshop/modshop/platform/money"
	"github.com/modshop/modshop/platform/telemetry"
)

// Publisher writes events in the caller's transaction.
type Publisher interface {
	Publish(ctx context.Context, tx *gorm.DB, events ...bus.Event) error
}

// Config holds the saga's step deadlines and the link to an order's trace.
type Config struct {
	StockTimeout     time.Duration // pending → reserved or rejected
	PaymentTimeout   time.Duration // awaiting_payment → paid or failed
	DeadlineInterval time.Duration // how often passed deadlines are looked for
	// TraceURLTemplate (MODSHOP_TRACE_URL_TEMPLATE) makes the trace_url that
	// staff see of an order placed in a trace: the template with
	// {trace_id} replaced (CheckTraceURLTemplate); "": no links.
	TraceURLTemplate string
	// Currency is the shop's (ISO 4217; "": money.DefaultCurrency): an
	// order is placed in it and keeps it.
	Currency string
	// ShippingMethods are the methods that deliver to an address
	// (MODSHOP_SHIPPING_METHODS, ParseShippingMethods); pickup is added.
	ShippingMethods []ShippingMethod
}

// Service holds the order use cases and the saga.
type Service struct {
	db      *gorm.DB
	pub     Publisher
	log     *slog.Logger
	cfg     Config
	metrics *sagaMetrics
	methods []ShippingMethod // pickup first, then cfg.ShippingMethods
}

// NewService builds the use cases on the module's database handle.
func NewService(gdb *gorm.DB, pub Publisher, log *slog.Logger, cfg Config) *Service {
	if cfg.StockTimeout <= 0 {
		cfg.StockTimeout = 30 * time.Second
	}
	if cfg.PaymentTimeout <= 0 {
		cfg.PaymentTimeout = 60 * time.Second
	}
	if cfg.DeadlineInterval <= 0 {
		cfg.DeadlineInterval = time.Second
	}
	cfg.Currency = money.Currency(cfg.Currency)
	methods := append([]ShippingMethod{pickup}, cfg.ShippingMethods...)
	return &Service{db: gdb, pub: pub, log: log, cfg: cfg, metrics: newSagaMetrics(), methods: methods}
}

var errNoOrder = apperr.NotFound("no such order")

// Place creates a pending order and publishes order.placed.v1 in the same
// transaction. With an idempotency key, the same key and body return the
// same order (also when two requests race); another body is refused.
func (s *Service) Place(ctx context.Context, caller auth.Identity, req PlaceOrder, idemKey string) (Order, error) {
	if errs := append(req.validate(), req.validateShipping(s.methods)...); len(errs) > 0 {
		return Order{}, apperr.Invalid(errs...)
	}
	method, _ := methodOf(s.methods, req.ShippingMethod)
	hash, err := requestHash(req)
	if err != nil {
		return Order{}, err
	}
	id := uuid.NewString()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if idemKey != "" {
		ctx = bus.WithIdempotencyKey(ctx, idemKey)
	}
	ctx = bus.WithCorrelationID(ctx, id)
	detail := fmt.Sprintf("%d item(s), paying with %s", len(req.Items), req.PaymentMethod)
	if a := req.ShippingAddress; a != nil {
		detail += fmt.Sprintf(", %s to %s, %s", method.Label, a.City, a.Country)
	}
	var placed Order
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Every statement of the placing goes in its transaction: a
		// statement outside one is a commit of its own.
		if err := s.checkCopyTotal(tx, req.Items); err != nil {
			return err
		}
		p, ok, err := insertOrder(tx, newOrder{ID: id, UserID: caller.UserID, PaymentMethod: req.PaymentMethod,
			IdempotencyKey: idemKey, RequestHash: hash, Lines: req.Items, Detail: detail, Currency: s.cfg.Currency,
			PlacedAt: now, Deadline: now.Add(s.cfg.StockTimeout), Traceparent: telemetry.Traceparent(ctx),
			Shipping: method, Address: req.ShippingAddress})
		if err != nil {
			return err
		}
		if !ok { // the key was used before (or by a racing request that committed first)
			prior, err := priorOrder(tx, caller.UserID, idemKey, hash)
			if err != nil {
				return err
			}
			id = prior
			return errReplayed
		}
		// The answer is what was just written, as GET reads it back.
		placed = toOrder(p.row)
		placed.Customer = p.customer
		lines := make([]events.OrderLine, len(req.Items))
		for i, l := range req.Items {
			placed.Items = append(placed.Items, Item{ProductID: l.ProductID, Quantity: l.Quantity, Name: nameOf(p.names, l.ProductID)})
			lines[i] = events.OrderLine{ProductID: l.ProductID, Quantity: l.Quantity}
		}
		sortItems(placed.Items)
		placed.Timeline = append(placed.Timeline, TimeEntry{At: p.at, Step: "placed", Detail: detail})
		return s.pub.Publish(ctx, tx, events.OrderPlaced{OrderID: id, UserID: caller.UserID, Lines: lines, PlacedAt: now})
	})
	if errors.Is(err, errReplayed) {
		return s.Get(ctx, caller, id)
	}
	if err != nil {
		return Order{}, err
	}
	s.show(caller, &placed)
	return placed, nil
}

// show completes o for caller: an order placed before orders kept their
// currency is in the shop's; staff see the trace the order was placed in.
func (s *Service) show(caller auth.Identity, o *Order) {
	if o.Currency == "" {
		o.Currency = s.cfg.Currency
	}
	if !caller.HasRole(auth.RoleAdmin) {
		return
	}
	st := &StaffTrace{}
	if o.traceparent != nil {
		if id := telemetry.TraceIDOf(*o.traceparent); id != "" {
			st.TraceID = &id
			st.TraceURL = traceURL(s.cfg.TraceURLTemplate, id)
		}
	}
	o.StaffTrace = st
}

// priorOrder is the order an idempotency key was used for; a key that
// came with another request body is refused.
func priorOrder(tx *gorm.DB, userID, idemKey string, hash []byte) (string, error) {
	prior, ok, err := idempotencyKeyUse(tx, userID, idemKey)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("idempotency key %q vanished", idemKey)
	}
	if !bytes.Equal(prior.RequestHash, hash) {
		return "", apperr.InvalidField("Idempotency-Key", "this key was used with another request body; use a new key for a new order")
	}
	return prior.OrderID, nil
}

var errReplayed = errors.New("idempotent replay")

// requestHash fingerprints a validated request, so a key reused with
// another body is recognised.
func requestHash(req any) ([]byte, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	return sum[:], nil
}

// Get returns an order to its owner or to staff; to anyone else it does
// not exist.
func (s *Service) Get(ctx context.Context, caller auth.Identity, id string) (Order, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Order{}, errNoOrder
	}
	var out []Order
	err := inOneSnapshot(ctx, s.db, func(tx *gorm.DB) error {
		row, ok, err := orderByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if !ok || (row.UserID != caller.UserID && !caller.HasRole(auth.RoleAdmin)) {
			return errNoOrder
		}
		out, err = loadOrders(ctx, tx, []orderRow{row})
		return err
	})
	if err != nil {
		return Order{}, err
	}
	s.show(caller, &out[0])
	return out[0], nil
}

// Page is one page of orders, newest first.
type Page struct {
	Items      []Order `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// List returns the caller's orders; staff see everyone's and may filter
// by status, and by fulfilment: to_ship is what is confirmed and not
// fulfilled yet, oldest first.
func (s *Service) List(ctx context.Context, caller auth.Identity, status, fulfilment, from string, limit int) (Page, error) {
	f := orderFilter{Status: Status(status), Limit: limit, ToShip: fulfilment == "to_ship"}
	if fulfilment != "" && !f.ToShip {
		return Page{}, apperr.InvalidField("fulfilment", "must be to_ship")
	}
	if !caller.HasRole(auth.RoleAdmin) {
		f.UserID = caller.UserID
	}
	if status != "" {
		switch f.Status {
		case Pending, AwaitingPayment, Confirmed, Rejected, Cancelled:
		default:
			return Page{}, apperr.InvalidField("status", "must be pending, awaiting_payment, confirmed, rejected or cancelled")
		}
	}
	if from != "" {
		c, err := cursor.Decode(from)
		if err != nil {
			return Page{}, apperr.Malformed("the cursor is not one this listing gave out")
		}
		f.After = &c
	}
	page := Page{}
	var items []Order
	err := inOneSnapshot(ctx, s.db, func(tx *gorm.DB) error {
		rows, err := listOrders(ctx, tx, f)
		if err != nil {
			return err
		}
		if len(rows) > limit {
			last := rows[limit-1]
			next := cursor.Encode(cursor.Keyset{CreatedAt: last.CreatedAt, ID: last.ID})
			page.NextCursor = &next
			rows = rows[:limit]
		}
		items, err = loadOrders(ctx, tx, rows)
		return err
	})
	if err != nil {
		return Page{}, err
	}
	for i := range items {
		s.show(caller, &items[i])
	}
	page.Items = items
	return page, nil
}

// Cancel cancels the caller's order before it is final.
func (s *Service) Cancel(ctx context.Context, caller auth.Identity, id string) (Order, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Order{}, errNoOrder
	}
	ctx = bus.WithCorrelationID(ctx, id)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, ok, err := lockOrder(tx, id)
		if err != nil {
			return err
		}
		if !ok || (o.UserID != caller.UserID && !caller.HasRole(auth.RoleAdmin)) {
			return errNoOrder
		}
		tr, err := Next(o.state(), CustomerCancel)
		if errors.Is(err, ErrFinal) {
			return apperr.Conflict(fmt.Sprintf("the order is %s and can no longer be cancelled", o.Status))
		}
		if err != nil {
			return err
		}
		return s.apply(ctx, tx, o.ID, o.state(), tr, "cancelled_by_customer", "", effect{detail: "cancelled by the customer"}, &o)
	})
	if err != nil {
		return Order{}, err
	}
	return s.Get(ctx, caller, id)
}
