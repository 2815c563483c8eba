package ledger

import (
	"context"
	"fmt"
	"regexp"

	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/money"
	"github.com/modshop/modshop/platform/telemetry"
)

// methodPattern is what a payment method id looks like (pm_card_visa).
// Whether the provider knows it is the provider's to say.
var methodPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,100}$`)

// RecordCharge records, in the handler's transaction tx, that the order's
// amount is to be charged: a 'pending' payment the worker will take to the
// provider. Only one payment per order is ever recorded: a second request
// for the same order (a redelivery, a retrying publisher) changes nothing.
// A payment method that cannot be one fails at once, with the failure
// published in tx.
func (s *Service) RecordCharge(ctx context.Context, tx *gorm.DB, req orderevents.PaymentRequested) error {
	if !isUUID(req.OrderID) || !isUUID(req.UserID) {
		return fmt.Errorf("payment.requested with invalid order id %q or user id %q", req.OrderID, req.UserID)
	}
	amount, ok := normaliseAmount(req.Amount)
	if !ok {
		return fmt.Errorf("payment.requested for order %s with invalid amount %q", req.OrderID, req.Amount)
	}
	// A request without a currency was published before requests carried
	// one: it is in the shop's, which the payment keeps as NULL.
	if req.Currency != "" {
		if code, err := money.ParseCurrency(req.Currency); err != nil || code != req.Currency {
			return fmt.Errorf("payment.requested for order %s with invalid currency %q", req.OrderID, req.Currency)
		}
	}
	key := req.OrderID
	if md, ok := bus.MessageMetadata(ctx); ok && md.IdempotencyKey != "" {
		key = md.IdempotencyKey
	}
	id := newID()
	// The worker's job for the payment continues this handler's trace.
	trace := telemetry.Traceparent(ctx)
	if !methodPattern.MatchString(req.PaymentMethod) {
		return s.recordInvalidMethod(ctx, tx, newPayment{ID: id, OrderID: req.OrderID, UserID: req.UserID, Amount: amount, Currency: req.Currency,
			IdempotencyKey: key, Traceparent: trace})
	}
	p := newPayment{ID: id, OrderID: req.OrderID, UserID: req.UserID, Amount: amount, Currency: req.Currency,
		Method: req.PaymentMethod, IdempotencyKey: key, Traceparent: trace}
	if ac, ok := s.claimFor(tx); ok {
		// Claimed for this process's worker, handed to it on commit (handover.go).
		recorded, err := insertClaimedPayment(tx, p)
		if err != nil || !recorded {
			return err
		}
		ac.AfterCommit(func() {
			s.handOver(claimedPayment{ID: p.ID, OrderID: p.OrderID, Amount: p.Amount, Currency: p.Currency, Method: p.Method,
				IdempotencyKey: p.IdempotencyKey, Attempts: 1, Traceparent: p.Traceparent})
		})
		return nil
	}
	recorded, err := insertPayment(tx, p)
	if err != nil {
		return err
	}
	if recorded {
		s.announce(tx, charges)
	}
	return nil
}

func (s *Service) recordInvalidMethod(ctx context.Context, tx *gorm.DB, p newPayment) error {
	now := s.now().UTC()
	recorded, err := insertInvalidMethodPayment(tx, p, now)
	if err != nil || !recorded {
		return err
	}
	return s.pub.Publish(outcomeContext(ctx, p.OrderID, p.IdempotencyKey), tx,
		events.PaymentFailed{OrderID: p.OrderID, PaymentID: p.ID, Reason: "invalid_method", FailedAt: now})
}
