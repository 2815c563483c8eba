package orders

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
)

// RefundState is how much of an order's charge came back: none, part
// (partly_refunded) or all (refunded). It is read from what the payment
// module reported refunded, so it follows succeeded refunds only.
type RefundState string

// Refund states.
const (
	RefundNone   RefundState = "none"
	RefundPartly RefundState = "partly_refunded"
	RefundFull   RefundState = "refunded"
)

// Refund is a refund of an order as the API shows it: asked for by staff
// (requested until the payment module reports it succeeded), or the
// refund of a charge that came after the order ended.
type Refund struct {
	ID         string      `json:"id"`
	Amount     string      `json:"amount"`
	Status     string      `json:"status"` // requested, succeeded, failed
	Reason     string      `json:"reason"`
	Lines      []OrderLine `json:"lines" gorm:"-"` // empty for a refund of an amount
	CreatedAt  time.Time   `json:"created_at"`
	RefundedAt *time.Time  `json:"refunded_at"`
	// FailedAt and FailureReason: when and why the payment provider
	// refused it (payment.refund_failed); null unless failed.
	FailedAt      *time.Time `json:"failed_at"`
	FailureReason *string    `json:"failure_reason"`
}

// RefundRequest is what staff send to refund a confirmed order: lines
// (each at its unit price) or an amount, and why.
type RefundRequest struct {
	Lines  []OrderLine `json:"lines"`
	Amount *string     `json:"amount"`
	Reason string      `json:"reason"`
}

// ReturnRequest is what staff send when goods of an order came back.
type ReturnRequest struct {
	Lines []OrderLine `json:"lines"`
}

const maxReasonRunes = 200

// refundAmountPattern is an amount as NUMERIC(10,2) holds it, positive.
var refundAmountPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$`)

// normaliseAmount writes a valid amount with two decimals; ok is false for
// anything else, zero included.
func normaliseAmount(s string) (string, bool) {
	if !refundAmountPattern.MatchString(s) {
		return "", false
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "00")[:2]
	if whole == "0" && frac == "00" {
		return "", false
	}
	return whole + "." + frac, true
}

// validLines checks and merges the lines of a refund or return; field is
// where an error points ("lines").
func validLines(lines []OrderLine, field string, errs *[]apperr.FieldError) []OrderLine {
	add := func(f, m string) { *errs = append(*errs, apperr.FieldError{Field: f, Message: m}) }
	if len(lines) > maxLines {
		add(field, "at most 50 lines")
		return nil
	}
	merged := map[string]int{}
	var out []OrderLine
	for _, l := range lines {
		u, err := uuid.Parse(l.ProductID)
		if err != nil || u.String() != l.ProductID {
			add(field+".product_id", "must be a product id")
			continue
		}
		if l.Quantity < 1 || l.Quantity > maxLineQuantity {
			add(field+".quantity", "must be a whole number from 1 to 100")
			continue
		}
		if _, seen := merged[l.ProductID]; !seen {
			out = append(out, OrderLine{ProductID: l.ProductID})
		}
		merged[l.ProductID] += l.Quantity
	}
	for i := range out {
		out[i].Quantity = merged[out[i].ProductID]
	}
	return out
}

// validate checks a refund request, merges its lines and normalises its
// amount.
func (r *RefundRequest) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	switch {
	case len(r.Lines) > 0 && r.Amount != nil:
		errs = append(errs, apperr.FieldError{Field: "amount", Message: "give lines or an amount, not both"})
	case len(r.Lines) == 0 && r.Amount == nil:
		errs = append(errs, apperr.FieldError{Field: "lines", Message: "give the lines to refund, or an amount"})
	case r.Amount != nil:
		a, ok := normaliseAmount(*r.Amount)
		if !ok {
			errs = append(errs, apperr.FieldError{Field: "amount", Message: "must be a positive amount such as 12.50"})
		}
		r.Amount = &a
	default:
		r.Lines = validLines(r.Lines, "lines", &errs)
	}
	if !utf8.ValidString(r.Reason) || strings.ContainsRune(r.Reason, 0) || utf8.RuneCountInString(r.Reason) > maxReasonRunes {
		errs = append(errs, apperr.FieldError{Field: "reason", Message: "must be text of at most 200 characters"})
	}
	r.Reason = strings.TrimSpace(r.Reason)
	return errs
}

func (r *ReturnRequest) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	if len(r.Lines) == 0 {
		errs = append(errs, apperr.FieldError{Field: "lines", Message: "give the lines that came back"})
	}
	r.Lines = validLines(r.Lines, "lines", &errs)
	return errs
}

// Refund asks the payment module to refund part or all of a confirmed
// order's charge, once per idempotency key: the same key and body answer
// the order again, another body is refused. A refund by lines is worth
// their unit prices; either kind must fit in what was captured less
// earlier refunds (those not yet carried out count). Lines refunded are
// bounded by what was bought less earlier line refunds.
func (s *Service) Refund(ctx context.Context, caller auth.Identity, id string, req RefundRequest, key string) (Order, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Order{}, errNoOrder
	}
	if errs := req.validate(); len(errs) > 0 {
		return Order{}, apperr.Invalid(errs...)
	}
	hash, err := requestHash(req)
	if err != nil {
		return Order{}, err
	}
	refundID := uuid.Must(uuid.NewV7()).String()
	ctx = bus.WithIdempotencyKey(bus.WithCorrelationID(ctx, id), key)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, ok, err := lockOrder(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoOrder
		}
		if prior, ok, err := refundKeyUse(tx, id, key); err != nil || ok {
			if err == nil && !bytes.Equal(prior, hash) {
				err = apperr.InvalidField("Idempotency-Key", "this key was used with another request body; use a new key for a new refund")
			}
			return err
		}
		if o.Status != Confirmed {
			return apperr.Conflict(fmt.Sprintf("the order is %s; only a confirmed order is refunded", o.Status))
		}
		amount, field := "", "amount"
		if req.Amount != nil {
			amount = *req.Amount
		} else {
			field = "lines"
			if amount, err = s.lineRefundAmount(tx, id, req.Lines); err != nil {
				return err
			}
		}
		left, fits, err := refundable(tx, id, amount)
		if err != nil {
			return err
		}
		if !fits {
			return apperr.InvalidField(field, fmt.Sprintf("%s is more than the %s left to refund", amount, left))
		}
		if err := insertRefundRequest(tx, refundRow{ID: refundID, OrderID: id, Amount: amount, Reason: req.Reason,
			Key: key, Hash: hash, Lines: req.Lines}); err != nil {
			return err
		}
		detail := "refunding " + amount
		if req.Reason != "" {
			detail += ": " + req.Reason
		}
		if err := addTimeline(tx, id, timelineEntry{step: "refund_requested", detail: detail}); err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, events.RefundRequested{OrderID: id, RefundID: refundID, Amount: amount, Reason: req.Reason})
	})
	if err != nil {
		return Order{}, err
	}
	return s.Get(ctx, caller, id)
}

// lineRefundAmount checks refund lines against the order's lines and
// prices them; it records them as refunded by line in tx.
func (s *Service) lineRefundAmount(tx *gorm.DB, orderID string, lines []OrderLine) (string, error) {
	items, err := lockedItems(tx, orderID)
	if err != nil {
		return "", err
	}
	for _, l := range lines {
		it, ok := items[l.ProductID]
		switch {
		case !ok:
			return "", apperr.InvalidField("lines.product_id", "the order has no line of product "+l.ProductID)
		case l.Quantity > it.Quantity-it.RefundedQuantity:
			return "", apperr.InvalidField("lines.quantity", fmt.Sprintf("%d of product %s is more than the %d not refunded yet",
				l.Quantity, l.ProductID, it.Quantity-it.RefundedQuantity))
		}
	}
	return refundLines(tx, orderID, lines)
}

// Return records that goods of a confirmed order came back and publishes
// order.returned, which puts them back in stock; it refunds nothing.
// Quantities are bounded by what was bought less earlier returns. With an
// idempotency key, the same key and body answer the order again.
func (s *Service) Return(ctx context.Context, caller auth.Identity, id string, req ReturnRequest, key string) (Order, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Order{}, errNoOrder
	}
	if errs := req.validate(); len(errs) > 0 {
		return Order{}, apperr.Invalid(errs...)
	}
	hash, err := requestHash(req)
	if err != nil {
		return Order{}, err
	}
	returnID := uuid.Must(uuid.NewV7()).String()
	ctx = bus.WithCorrelationID(ctx, id)
	if key != "" {
		ctx = bus.WithIdempotencyKey(ctx, key)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, ok, err := lockOrder(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoOrder
		}
		if key != "" {
			if prior, ok, err := returnKeyUse(tx, id, key); err != nil || ok {
				if err == nil && !bytes.Equal(prior, hash) {
					err = apperr.InvalidField("Idempotency-Key", "this key was used with another request body; use a new key for a new return")
				}
				return err
			}
		}
		if o.Status != Confirmed {
			return apperr.Conflict(fmt.Sprintf("the order is %s; only the goods of a confirmed order come back", o.Status))
		}
		items, err := lockedItems(tx, id)
		if err != nil {
			return err
		}
		n := 0
		lines := make([]events.OrderLine, len(req.Lines))
		for i, l := range req.Lines {
			it, ok := items[l.ProductID]
			switch {
			case !ok:
				return apperr.InvalidField("lines.product_id", "the order has no line of product "+l.ProductID)
			case l.Quantity > it.Quantity-it.ReturnedQuantity:
				return apperr.InvalidField("lines.quantity", fmt.Sprintf("%d of product %s is more than the %d not returned yet",
					l.Quantity, l.ProductID, it.Quantity-it.ReturnedQuantity))
			}
			n += l.Quantity
			lines[i] = events.OrderLine{ProductID: l.ProductID, Quantity: l.Quantity}
		}
		if err := insertReturn(tx, returnID, id, key, hash, req.Lines); err != nil {
			return err
		}
		if err := addTimeline(tx, id, timelineEntry{step: "returned", detail: fmt.Sprintf("%d item(s) came back", n)}); err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, events.OrderReturned{OrderID: id, ReturnID: returnID, Lines: lines, ReturnedAt: time.Now().UTC()})
	})
	if err != nil {
		return Order{}, err
	}
	return s.Get(ctx, caller, id)
}

// settleRefund records a refund the order asked for as succeeded, once;
// it reports false when the order asked for no refund with that id (the
// refund of a late charge, which the saga records).
func (s *Service) settleRefund(tx *gorm.DB, orderID, refundID, messageID string, at time.Time) (bool, error) {
	amount, known, settled, err := markRefundSucceeded(tx, orderID, refundID, at)
	if err != nil || !known {
		return known, err
	}
	if settled {
		err = addTimeline(tx, orderID, timelineEntry{step: "payment_refunded", messageID: messageID, detail: "refunded " + amount})
	}
	return true, err
}
