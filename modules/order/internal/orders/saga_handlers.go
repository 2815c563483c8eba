package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/periodic"
)

// effect is what a saga input does to an order besides moving it: the
// detail of its timeline entry and what it changes in the order's row.
type effect struct {
	detail     string
	priceTotal bool   // the lines were priced: the total is their sum
	total      string // that total, as priceLines computed it
}

// withCurrency is o with the shop's currency when it was placed before
// orders kept theirs.
func (s *Service) withCurrency(o orderRow) orderRow {
	if o.Currency == nil {
		o.Currency = &s.cfg.Currency
	}
	return o
}

// errMovedOn: the order is no longer in the state a step was computed for.
var errMovedOn = errors.New("the order moved on")

// apply persists a transition of an order in state from: one statement
// that updates the order's row (its state, deadline, and what the input
// changes) and appends its timeline entries (the input's, then the
// actions'), and the events its actions publish, all in tx. known is the
// order's row as locked before the step (nil when the step did not read
// it); an action whose entry tells what the row holds needs it. It returns
// errMovedOn, having written nothing, when the order is not in state from.
func (s *Service) apply(ctx context.Context, tx *gorm.DB, id string, from State, tr Transition, step, messageID string, eff effect, known *orderRow) error {
	if tr.To == from || !Forward(from, tr.To) {
		return fmt.Errorf("order %s: no step forward from %v to %v", id, from, tr.To)
	}
	c := orderChange{from: from, to: tr.To, at: time.Now().UTC(), priceTotal: eff.priceTotal,
		paymentRequested: tr.To.Payment == ChargeRequested && from.Payment != ChargeRequested}
	if tr.To.Status != from.Status {
		switch tr.To.Status {
		case AwaitingPayment:
			d := c.at.Add(s.cfg.PaymentTimeout)
			c.deadline = &d
		case Cancelled, Rejected:
			c.reason = step
		}
	}
	// The entries are written with the row, so they are made from the row
	// as it will be: the one read before the step, with the total the
	// input priced.
	will := orderRow{ID: id}
	if known != nil {
		will = *known
	}
	if eff.priceTotal {
		will.Total = &eff.total
	}
	entries := []timelineEntry{{step: step, messageID: messageID, detail: eff.detail}}
	for _, a := range tr.Actions {
		entry, _, err := act(s.withCurrency(will), from.Status, a, step)
		if err != nil {
			return err
		}
		if entry.step != "" {
			entries = append(entries, entry)
		}
	}
	o, ok, err := changeOrder(tx, id, c, entries)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("order %s is not %v: %w", id, from, errMovedOn)
	}
	o = s.withCurrency(o)
	var evs []bus.Event
	for _, a := range tr.Actions {
		_, ev, err := act(o, from.Status, a, step)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
	}
	if len(evs) > 0 {
		if err := s.pub.Publish(ctx, tx, evs...); err != nil {
			return err
		}
	}
	// The stages this step ends, timed once it commits: a step is applied
	// once per order (changeOrder writes only over from), so a message
	// delivered again observes nothing.
	md, _ := bus.MessageMetadata(ctx)
	s.metrics.observeAfterCommit(tx, sagaStages(from, tr.To, o.CreatedAt, o.PaymentRequestedAt, md.OccurredAt, c.at))
	return nil
}

// act is an action's timeline entry (none when its step is "") and event,
// for the order o as apply wrote it, which was in status from before.
func act(o orderRow, from Status, a Action, reason string) (timelineEntry, bus.Event, error) {
	switch a {
	case RequestPayment:
		if o.Total == nil {
			return timelineEntry{}, nil, fmt.Errorf("order %s has no total to charge", o.ID)
		}
		total := *o.Total
		return timelineEntry{step: "payment_requested", detail: "charging " + total + " " + *o.Currency + " with " + o.PaymentMethod},
			events.PaymentRequested{OrderID: o.ID, UserID: o.UserID, Amount: total, Currency: *o.Currency, PaymentMethod: o.PaymentMethod, RequestedAt: time.Now().UTC()}, nil
	case PublishConfirmed:
		// Its own step, so a timeline reads to its end: paid, then confirmed.
		return timelineEntry{step: "confirmed"}, events.OrderConfirmed{OrderID: o.ID}, nil
	case PublishRejected:
		return timelineEntry{}, events.OrderRejected{OrderID: o.ID, Reason: reason}, nil
	case PublishCancelled:
		return timelineEntry{}, events.OrderCancelled{OrderID: o.ID, Reason: reason}, nil
	case RequestRefund:
		return timelineEntry{step: "refund_requested", detail: "the charge came after the order ended; refunding it"},
			events.RefundRequested{OrderID: o.ID, Reason: "charged after the order was " + string(from)}, nil
	}
	return timelineEntry{}, nil, fmt.Errorf("unknown saga action %q", a)
}

// decision is what an input from the bus does to the order it found: the
// input as the order sees it (a reservation whose total is too large is
// TotalTooLarge) and its effect.
type decision func(o orderRow) (Input, effect, error)

// step runs one saga input for an order arriving from the bus: it locks
// the order, asks Next what the input does in the order's state, and, when
// it does something, applies that with the input's effect (decide runs
// only then, and may turn the input into another). An input that does
// nothing, because the order has passed the state it was meant for,
// writes nothing. An order this module does not know is a poison message
// (it should never happen): the error sends it to the dead letters.
func (s *Service) step(ctx context.Context, tx *gorm.DB, orderID string, in Input, decide decision) error {
	o, ok, err := lockOrder(tx, orderID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s for unknown order %s", in, orderID)
	}
	md, _ := bus.MessageMetadata(ctx)
	tr, err := Next(o.state(), in)
	if err != nil {
		return err
	}
	if tr.Changed {
		var eff effect
		in, eff, err = decide(o)
		if err != nil {
			return err
		}
		if tr, err = Next(o.state(), in); err != nil {
			return err
		}
		if tr.Changed {
			return s.apply(ctx, tx, o.ID, o.state(), tr, string(in), md.MessageID, eff, &o)
		}
	}
	s.log.InfoContext(ctx, "saga input changes nothing: the order has passed the state it was meant for",
		"order_id", o.ID, "input", in, "status", o.Status, "payment_state", o.PaymentState, "message_id", md.MessageID)
	return nil
}

// stepFrom runs a saga input that usually finds the order in state usual,
// with an effect that does not depend on the order's row. It applies the
// transition from usual right away: apply's UPDATE only writes while the
// order is in that state, and locks it as step's lock does. Only when the
// order is elsewhere (a duplicate, a late arrival, a race with a
// cancellation), which changed nothing, does it take step's way.
func (s *Service) stepFrom(ctx context.Context, tx *gorm.DB, orderID string, in Input, usual State, eff effect) error {
	tr, err := Next(usual, in)
	if err == nil && tr.Changed {
		md, _ := bus.MessageMetadata(ctx)
		err = s.apply(ctx, tx, orderID, usual, tr, string(in), md.MessageID, eff, nil)
		if !errors.Is(err, errMovedOn) {
			return err
		}
	}
	return s.step(ctx, tx, orderID, in, func(orderRow) (Input, effect, error) { return in, eff, nil })
}

// OnStockReserved copies the authoritative names and prices and computes
// the total. A total an order can hold is charged; a larger one is a
// business outcome, not a failure: the order is rejected as
// total_too_large and its reservation released (order.rejected).
func (s *Service) OnStockReserved(ctx context.Context, tx *gorm.DB, ev productevents.StockReserved) error {
	return s.step(ctx, tx, ev.OrderID, StockReserved, func(o orderRow) (Input, effect, error) {
		total, tooLarge, err := priceLines(tx, o.ID, ev.Lines, o.ShippingPrice)
		if err != nil {
			return "", effect{}, err
		}
		if tooLarge {
			return TotalTooLarge, effect{detail: fmt.Sprintf("%d line(s) reserved, but their total %s is more than an order can hold (%s)",
				len(ev.Lines), total, maxTotal)}, nil
		}
		detail := fmt.Sprintf("%d line(s) reserved until %s", len(ev.Lines), ev.ExpiresAt.UTC().Format(time.RFC3339))
		return StockReserved, effect{detail: detail, priceTotal: true, total: total}, nil
	})
}

// OnStockRejected rejects the order; its timeline names the short
// products by their lines' names (the copy's, for a line placed before the
// copy knew it; the id when neither does).
func (s *Service) OnStockRejected(ctx context.Context, tx *gorm.DB, ev productevents.StockRejected) error {
	names, err := lineNames(tx, ev.OrderID)
	if err != nil {
		return err
	}
	var parts []string
	for _, l := range ev.Short {
		what := l.ProductID
		if n := names[l.ProductID]; n != "" {
			what = n
		}
		switch l.Reason {
		case "insufficient_stock":
			parts = append(parts, fmt.Sprintf("%s: %d wanted, %d available", what, l.Requested, l.Available))
		default:
			parts = append(parts, fmt.Sprintf("%s: %s", what, strings.ReplaceAll(l.Reason, "_", " ")))
		}
	}
	return s.stepFrom(ctx, tx, ev.OrderID, StockRejected, State{Pending, NoPayment}, effect{detail: "not enough stock: " + strings.Join(parts, "; ")})
}

// OnPaymentSucceeded confirms the order, or refunds a charge that came too late.
func (s *Service) OnPaymentSucceeded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentSucceeded) error {
	return s.stepFrom(ctx, tx, ev.OrderID, PaymentSucceeded, State{AwaitingPayment, ChargeRequested}, effect{detail: "charged " + ev.Amount})
}

// OnPaymentFailed cancels the order; the stock goes back.
func (s *Service) OnPaymentFailed(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentFailed) error {
	return s.stepFrom(ctx, tx, ev.OrderID, PaymentFailed, State{AwaitingPayment, ChargeRequested},
		effect{detail: "payment failed: " + strings.ReplaceAll(ev.Reason, "_", " ")})
}

// OnPaymentRefunded records the refund: one the order asked for (staff
// refunding a confirmed order) is settled and counted; any other is the
// refund of a charge that came after the order ended, a saga step, which
// records it as the order's refund when the step applies (so a repeat, or
// a refund the saga is past, counts nothing).
func (s *Service) OnPaymentRefunded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefunded) error {
	// A refund without a valid id (none is published so) is a saga step
	// alone.
	valid := false
	if u, err := uuid.Parse(ev.RefundID); err == nil && u.String() == ev.RefundID {
		valid = true
	}
	at := ev.RefundedAt.UTC()
	if valid {
		if _, ok, err := lockOrder(tx, ev.OrderID); err != nil || !ok {
			if err == nil {
				err = fmt.Errorf("%s for unknown order %s", PaymentRefunded, ev.OrderID)
			}
			return err
		}
		md, _ := bus.MessageMetadata(ctx)
		if known, err := s.settleRefund(tx, ev.OrderID, ev.RefundID, md.MessageID, at); err != nil || known {
			return err
		}
	}
	return s.step(ctx, tx, ev.OrderID, PaymentRefunded, func(orderRow) (Input, effect, error) {
		if valid {
			if err := recordLateRefund(tx, ev.OrderID, ev.RefundID, ev.Amount, at); err != nil {
				return "", effect{}, err
			}
		}
		return PaymentRefunded, effect{detail: "refunded " + ev.Amount}, nil
	})
}

// CancelOverdue cancels orders whose current step is past its deadline,
// each in its own transaction, and reports how many. The work on each
// order is a trace of its own (span "order.sweep deadline", a root), linked
// to the trace the order was placed in: the cancellation's events, and
// what other modules do with them, are in it.
func (s *Service) CancelOverdue(ctx context.Context, limit int) (int, error) {
	overdue, err := overdueOrders(ctx, s.db, limit)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, od := range overdue {
		cancelled, err := s.cancelOverdue(ctx, od)
		if err != nil {
			return n, fmt.Errorf("cancel overdue order %s: %w", od.ID, err)
		}
		if cancelled {
			n++
		}
	}
	return n, nil
}

// cancelOverdue cancels one order found past its deadline, unless it moved
// on meanwhile, in a trace of its own.
func (s *Service) cancelOverdue(ctx context.Context, od overdueOrder) (cancelled bool, err error) {
	id := od.ID
	ctx, span := sweepSpan(ctx, "deadline", id, od.Traceparent)
	defer func() {
		outcome := "moved_on"
		switch {
		case err != nil:
			outcome = "failed"
		case cancelled:
			outcome = "cancelled"
		}
		span.SetAttributes(attribute.String("modshop.sweep.outcome", outcome))
		endSpan(span, err)
	}()
	ctx = bus.WithCorrelationID(ctx, id)
	var step string
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, ok, err := lockOrder(tx, id)
		if err != nil || !ok {
			return err
		}
		// A final order has no deadline (NULL): another sweep (a
		// replica's) or a handler ended it after it was found.
		if overdue, err := stillOverdue(tx, id); err != nil || !overdue {
			return err // it moved on meanwhile
		}
		tr, err := Next(o.state(), DeadlinePassed)
		if err != nil || !tr.Changed {
			return err
		}
		step = "stock_timeout"
		if o.Status == AwaitingPayment {
			step = "payment_timeout"
		}
		cancelled = true
		return s.apply(ctx, tx, o.ID, o.state(), tr, step, "", effect{detail: "no answer before the deadline while " + string(o.Status)}, &o)
	})
	if err != nil {
		return false, err // the sweep logs it; the span records it
	}
	if cancelled {
		s.log.InfoContext(ctx, "order cancelled: past its deadline", "order_id", id, "reason", step)
	}
	return cancelled, nil
}

// RunDeadlines cancels overdue orders every DeadlineInterval until ctx ends.
func (s *Service) RunDeadlines(ctx context.Context) {
	periodic.Sweep(ctx, s.cfg.DeadlineInterval, s.log, "cancel overdue orders", func(ctx context.Context) (int, error) {
		return s.CancelOverdue(ctx, 100)
	})
}
