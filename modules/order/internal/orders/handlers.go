package orders

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

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
	detail       string
	paymentState string // "" leaves it as it is
	priceTotal   bool   // the lines were priced: the total is their sum
}

// errMovedOn: the order is no longer in the status a step was computed for.
var errMovedOn = errors.New("the order moved on")

// apply persists a transition of an order in status from: one UPDATE of
// the order's row (status, deadline, and what the input and the actions
// change), one INSERT of its timeline entries (the input's, then the
// actions'), and the events its actions publish, all in tx. It returns
// errMovedOn, having written nothing, when the order is not in status from.
func (s *Service) apply(ctx context.Context, tx *gorm.DB, id string, from Status, tr Transition, step, messageID string, eff effect) error {
	c := orderChange{from: from, to: tr.To, paymentState: eff.paymentState, priceTotal: eff.priceTotal}
	if tr.Changed {
		c.moved, c.at = true, time.Now().UTC()
		switch tr.To {
		case Pending:
			d := c.at.Add(s.cfg.StockTimeout)
			c.deadline = &d
		case AwaitingPayment:
			d := c.at.Add(s.cfg.PaymentTimeout)
			c.deadline = &d
		}
		if tr.To == Cancelled || tr.To == Rejected {
			c.reason = step
		}
	}
	for _, a := range tr.Actions {
		if ps := paymentStateAfter(a); ps != "" {
			c.paymentState = ps
		}
	}
	o, ok, err := changeOrder(tx, id, c)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("order %s is not %s: %w", id, from, errMovedOn)
	}
	entries := []timelineEntry{{step: step, messageID: messageID, detail: eff.detail}}
	var evs []bus.Event
	for _, a := range tr.Actions {
		entry, ev, err := act(o, from, a, step)
		if err != nil {
			return err
		}
		if entry.step != "" {
			entries = append(entries, entry)
		}
		evs = append(evs, ev)
	}
	if err := addTimeline(tx, o.ID, entries...); err != nil {
		return err
	}
	if len(evs) == 0 {
		return nil
	}
	return s.pub.Publish(ctx, tx, evs...)
}

// paymentStateAfter is the payment state an action sets, or "".
func paymentStateAfter(a Action) string {
	switch a {
	case RequestPayment:
		return "requested"
	case RequestRefund:
		return "refund_requested"
	}
	return ""
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
		return timelineEntry{step: "payment_requested", detail: "charging " + total + " with " + o.PaymentMethod},
			events.PaymentRequested{OrderID: o.ID, UserID: o.UserID, Amount: total, PaymentMethod: o.PaymentMethod, RequestedAt: time.Now().UTC()}, nil
	case PublishConfirmed:
		return timelineEntry{}, events.OrderConfirmed{OrderID: o.ID}, nil
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

// step runs one saga input for an order arriving from the bus: it locks
// the order, asks Next what the input does in the order's status, and
// applies that with the input's effect (computed only when the input does
// something). An order this module does not know is a poison message (it
// should never happen): the error sends it to the dead letters.
func (s *Service) step(ctx context.Context, tx *gorm.DB, orderID string, in Input, effectOf func(o orderRow) (effect, error)) error {
	o, ok, err := lockOrder(tx, orderID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s for unknown order %s", in, orderID)
	}
	md, _ := bus.Current(ctx)
	tr, err := Next(o.Status, in)
	if err != nil {
		return err
	}
	if !tr.Changed && len(tr.Actions) == 0 {
		return addTimeline(tx, o.ID, timelineEntry{step: string(in) + "_ignored", messageID: md.MessageID, detail: "arrived while the order was " + string(o.Status)})
	}
	eff, err := effectOf(o)
	if err != nil {
		return err
	}
	return s.apply(ctx, tx, o.ID, o.Status, tr, string(in), md.MessageID, eff)
}

// stepFrom runs a saga input that usually finds the order in status usual,
// with an effect that does not depend on the order's row. It applies the
// transition from usual right away: apply's UPDATE only writes while the
// order is in that status, and locks it as step's lock does. Only when the
// order is elsewhere (a duplicate, a late arrival, a race with a
// cancellation), which changed nothing, does it take step's way.
func (s *Service) stepFrom(ctx context.Context, tx *gorm.DB, orderID string, in Input, usual Status, eff effect) error {
	tr, err := Next(usual, in)
	if err == nil && (tr.Changed || len(tr.Actions) > 0) {
		md, _ := bus.Current(ctx)
		err = s.apply(ctx, tx, orderID, usual, tr, string(in), md.MessageID, eff)
		if !errors.Is(err, errMovedOn) {
			return err
		}
	}
	return s.step(ctx, tx, orderID, in, func(orderRow) (effect, error) { return eff, nil })
}

// OnStockReserved copies the authoritative names and prices, computes the
// total and asks for payment.
func (s *Service) OnStockReserved(ctx context.Context, tx *gorm.DB, ev productevents.StockReserved) error {
	return s.step(ctx, tx, ev.OrderID, StockReserved, func(o orderRow) (effect, error) {
		tooLarge, err := priceLines(tx, o.ID, ev.Lines)
		if err != nil {
			return effect{}, err
		}
		if tooLarge {
			return effect{}, fmt.Errorf("order %s: total above 99999999.99", o.ID)
		}
		detail := fmt.Sprintf("%d line(s) reserved until %s", len(ev.Lines), ev.ExpiresAt.UTC().Format(time.RFC3339))
		return effect{detail: detail, priceTotal: true}, nil
	})
}

// OnStockRejected rejects the order.
func (s *Service) OnStockRejected(ctx context.Context, tx *gorm.DB, ev productevents.StockRejected) error {
	var parts []string
	for _, l := range ev.Short {
		switch l.Reason {
		case "insufficient_stock":
			parts = append(parts, fmt.Sprintf("%s: %d wanted, %d available", l.ProductID, l.Requested, l.Available))
		default:
			parts = append(parts, fmt.Sprintf("%s: %s", l.ProductID, strings.ReplaceAll(l.Reason, "_", " ")))
		}
	}
	return s.stepFrom(ctx, tx, ev.OrderID, StockRejected, Pending, effect{detail: "not enough stock: " + strings.Join(parts, "; ")})
}

// OnPaymentSucceeded confirms the order, or refunds a charge that came too late.
func (s *Service) OnPaymentSucceeded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentSucceeded) error {
	return s.stepFrom(ctx, tx, ev.OrderID, PaymentSucceeded, AwaitingPayment, effect{detail: "charged " + ev.Amount, paymentState: "captured"})
}

// OnPaymentFailed cancels the order; the stock goes back.
func (s *Service) OnPaymentFailed(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentFailed) error {
	return s.stepFrom(ctx, tx, ev.OrderID, PaymentFailed, AwaitingPayment,
		effect{detail: "payment failed: " + strings.ReplaceAll(ev.Reason, "_", " "), paymentState: "failed"})
}

// OnPaymentRefunded records the refund on the order's timeline.
func (s *Service) OnPaymentRefunded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefunded) error {
	md, _ := bus.Current(ctx)
	res := tx.Exec(`UPDATE orders SET payment_state = 'refunded', updated_at = now() WHERE id = ?`, ev.OrderID)
	if res.Error != nil {
		return fmt.Errorf("refund of order %s: %w", ev.OrderID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("refund for unknown order %s", ev.OrderID)
	}
	return addTimeline(tx, ev.OrderID, timelineEntry{step: "refunded", messageID: md.MessageID, detail: "refunded " + ev.Amount})
}

// CancelOverdue cancels orders whose current step is past its deadline,
// each in its own transaction, and reports how many.
func (s *Service) CancelOverdue(ctx context.Context, limit int) (int, error) {
	var ids []string
	err := s.db.WithContext(ctx).Raw(`SELECT id FROM orders WHERE status IN ('pending', 'awaiting_payment') AND deadline_at < now() ORDER BY deadline_at LIMIT ?`, limit).Scan(&ids).Error
	if err != nil {
		return 0, fmt.Errorf("find overdue orders: %w", err)
	}
	n := 0
	for _, id := range ids {
		cancelled := false
		err := s.db.WithContext(bus.WithCorrelationID(ctx, id)).Transaction(func(tx *gorm.DB) error {
			o, ok, err := lockOrder(tx, id)
			if err != nil || !ok {
				return err
			}
			var overdue bool
			if err := tx.Raw(`SELECT deadline_at < now() FROM orders WHERE id = ?`, id).Scan(&overdue).Error; err != nil || !overdue {
				return err // it moved on meanwhile
			}
			tr, err := Next(o.Status, DeadlinePassed)
			if err != nil || !tr.Changed {
				return err
			}
			step := "stock_timeout"
			if o.Status == AwaitingPayment {
				step = "payment_timeout"
			}
			cancelled = true
			return s.apply(bus.WithCorrelationID(ctx, id), tx, o.ID, o.Status, tr, step, "", effect{detail: "no answer before the deadline while " + string(o.Status)})
		})
		if err != nil {
			return n, fmt.Errorf("cancel overdue order %s: %w", id, err)
		}
		if cancelled {
			n++
		}
	}
	return n, nil
}

// RunDeadlines cancels overdue orders every DeadlineInterval until ctx ends.
func (s *Service) RunDeadlines(ctx context.Context) {
	periodic.Sweep(ctx, s.cfg.DeadlineInterval, s.log, "cancel overdue orders", func(ctx context.Context) (int, error) {
		return s.CancelOverdue(ctx, 100)
	})
}
