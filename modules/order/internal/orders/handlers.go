package orders

import (
	"context"
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

// apply persists a transition: status, deadline, the timeline entry, and
// the events its actions publish, all in tx.
func (s *Service) apply(ctx context.Context, tx *gorm.DB, o orderRow, tr Transition, step, messageID, detail string) error {
	now := time.Now().UTC()
	if tr.Changed {
		var deadline *time.Time
		switch tr.To {
		case Pending:
			d := now.Add(s.cfg.StockTimeout)
			deadline = &d
		case AwaitingPayment:
			d := now.Add(s.cfg.PaymentTimeout)
			deadline = &d
		}
		reason := ""
		if tr.To == Cancelled || tr.To == Rejected {
			reason = step
		}
		if err := tx.Exec(`UPDATE orders SET status = ?, deadline_at = ?, cancel_reason = ?, updated_at = ? WHERE id = ?`,
			tr.To, deadline, reason, now, o.ID).Error; err != nil {
			return fmt.Errorf("update order %s: %w", o.ID, err)
		}
	}
	if err := addTimeline(tx, o.ID, step, messageID, detail); err != nil {
		return err
	}
	for _, a := range tr.Actions {
		if err := s.act(ctx, tx, o, a, step); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) act(ctx context.Context, tx *gorm.DB, o orderRow, a Action, reason string) error {
	var ev bus.Event
	switch a {
	case RequestPayment:
		var total string
		if err := tx.Raw(`SELECT total_amount::text FROM orders WHERE id = ?`, o.ID).Scan(&total).Error; err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE orders SET payment_state = 'requested' WHERE id = ?`, o.ID).Error; err != nil {
			return err
		}
		if err := addTimeline(tx, o.ID, "payment_requested", "", "charging "+total+" with "+o.PaymentMethod); err != nil {
			return err
		}
		ev = events.PaymentRequested{OrderID: o.ID, UserID: o.UserID, Amount: total, PaymentMethod: o.PaymentMethod, RequestedAt: time.Now().UTC()}
	case PublishConfirmed:
		ev = events.OrderConfirmed{OrderID: o.ID}
	case PublishRejected:
		ev = events.OrderRejected{OrderID: o.ID, Reason: reason}
	case PublishCancelled:
		ev = events.OrderCancelled{OrderID: o.ID, Reason: reason}
	case RequestRefund:
		if err := tx.Exec(`UPDATE orders SET payment_state = 'refund_requested' WHERE id = ?`, o.ID).Error; err != nil {
			return err
		}
		if err := addTimeline(tx, o.ID, "refund_requested", "", "the charge came after the order ended; refunding it"); err != nil {
			return err
		}
		ev = events.RefundRequested{OrderID: o.ID, Reason: "charged after the order was " + string(o.Status)}
	default:
		return fmt.Errorf("unknown saga action %q", a)
	}
	return s.pub.Publish(ctx, tx, ev)
}

// step runs one saga input for an order arriving from the bus. An order
// this module does not know is a poison message (it should never happen):
// the error sends it to the dead letters.
func (s *Service) step(ctx context.Context, tx *gorm.DB, orderID string, in Input, before func(o orderRow) (string, error)) error {
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
	detail := ""
	if before != nil && (tr.Changed || len(tr.Actions) > 0) {
		if detail, err = before(o); err != nil {
			return err
		}
	}
	if !tr.Changed && len(tr.Actions) == 0 {
		return addTimeline(tx, o.ID, string(in)+"_ignored", md.MessageID, "arrived while the order was "+string(o.Status))
	}
	return s.apply(ctx, tx, o, tr, string(in), md.MessageID, detail)
}

// OnStockReserved copies the authoritative names and prices, computes the
// total and asks for payment.
func (s *Service) OnStockReserved(ctx context.Context, tx *gorm.DB, ev productevents.StockReserved) error {
	return s.step(ctx, tx, ev.OrderID, StockReserved, func(o orderRow) (string, error) {
		for _, l := range ev.Lines {
			res := tx.Exec(`UPDATE order_items SET name = ?, unit_price = ?::numeric WHERE order_id = ? AND product_id = ?`, l.Name, l.UnitPrice, o.ID, l.ProductID)
			if res.Error != nil {
				return "", fmt.Errorf("price order item: %w", res.Error)
			}
		}
		var tooLarge bool
		if err := tx.Raw(`SELECT coalesce(sum(unit_price * quantity), 0) > 99999999.99 FROM order_items WHERE order_id = ?`, o.ID).Scan(&tooLarge).Error; err != nil {
			return "", err
		}
		if tooLarge {
			return "", fmt.Errorf("order %s: total above 99999999.99", o.ID)
		}
		if err := tx.Exec(`UPDATE orders SET total_amount = (SELECT sum(unit_price * quantity) FROM order_items WHERE order_id = ?) WHERE id = ?`, o.ID, o.ID).Error; err != nil {
			return "", fmt.Errorf("total of order %s: %w", o.ID, err)
		}
		return fmt.Sprintf("%d line(s) reserved until %s", len(ev.Lines), ev.ExpiresAt.UTC().Format(time.RFC3339)), nil
	})
}

// OnStockRejected rejects the order.
func (s *Service) OnStockRejected(ctx context.Context, tx *gorm.DB, ev productevents.StockRejected) error {
	return s.step(ctx, tx, ev.OrderID, StockRejected, func(orderRow) (string, error) {
		var parts []string
		for _, l := range ev.Short {
			switch l.Reason {
			case "insufficient_stock":
				parts = append(parts, fmt.Sprintf("%s: %d wanted, %d available", l.ProductID, l.Requested, l.Available))
			default:
				parts = append(parts, fmt.Sprintf("%s: %s", l.ProductID, strings.ReplaceAll(l.Reason, "_", " ")))
			}
		}
		return "not enough stock: " + strings.Join(parts, "; "), nil
	})
}

// OnPaymentSucceeded confirms the order, or refunds a charge that came too late.
func (s *Service) OnPaymentSucceeded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentSucceeded) error {
	return s.step(ctx, tx, ev.OrderID, PaymentSucceeded, func(o orderRow) (string, error) {
		if err := tx.Exec(`UPDATE orders SET payment_state = 'captured' WHERE id = ?`, o.ID).Error; err != nil {
			return "", err
		}
		return "charged " + ev.Amount, nil
	})
}

// OnPaymentFailed cancels the order; the stock goes back.
func (s *Service) OnPaymentFailed(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentFailed) error {
	return s.step(ctx, tx, ev.OrderID, PaymentFailed, func(o orderRow) (string, error) {
		if err := tx.Exec(`UPDATE orders SET payment_state = 'failed' WHERE id = ?`, o.ID).Error; err != nil {
			return "", err
		}
		return "payment failed: " + strings.ReplaceAll(ev.Reason, "_", " "), nil
	})
}

// OnPaymentRefunded records the refund on the order's timeline.
func (s *Service) OnPaymentRefunded(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefunded) error {
	o, ok, err := lockOrder(tx, ev.OrderID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("refund for unknown order %s", ev.OrderID)
	}
	md, _ := bus.Current(ctx)
	if err := tx.Exec(`UPDATE orders SET payment_state = 'refunded', updated_at = now() WHERE id = ?`, o.ID).Error; err != nil {
		return err
	}
	return addTimeline(tx, o.ID, "refunded", md.MessageID, "refunded "+ev.Amount)
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
			return s.apply(bus.WithCorrelationID(ctx, id), tx, o, tr, step, "", "no answer before the deadline while "+string(o.Status))
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
