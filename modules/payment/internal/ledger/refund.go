package ledger

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/payment/internal/provider"
)

// claimedRefund is a refund the worker holds as 'processing', with what
// the provider needs from its payment.
type claimedRefund struct {
	ID             string
	PaymentID      string
	OrderID        string
	Amount         string
	Currency       string // its payment's; "" for the shop's
	IdempotencyKey string
	Attempts       int // including this one: the claim's token
	Capture        string
	Traceparent    string // the recording handler's trace context; "" for none
}

// claimRefunds claims up to n refunds that are due, or whose claim
// outlived its lease (claimDueRefunds).
func (s *Service) claimRefunds(ctx context.Context, n int) ([]claimedRefund, error) {
	return claimDueRefunds(ctx, s.db, s.cfg.lease(), n)
}

// refund refunds a claimed refund through the provider, with the refund's
// id as idempotency key, and settles the answer. Money owed back is never
// given up on: a provider that does not answer is asked again, with the
// backoff capped at MaxBackoff, until it does. Only a definite refusal
// fails the refund. The job runs in a span "payment.work refund", a
// child of the trace context recorded with the refund.
func (s *Service) refund(ctx context.Context, r claimedRefund) {
	ctx, span := s.startWork(ctx, "refund", r.Traceparent, r.Attempts,
		attribute.String(attrRefundID, r.ID), attribute.String(attrPaymentID, r.PaymentID), attribute.String(attrOrderID, r.OrderID))
	defer span.End()
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.ProviderTimeout)
	ref, err := s.provider.Refund(callCtx, provider.RefundRequest{IdempotencyKey: r.ID, Capture: r.Capture, Amount: r.Amount})
	cancel()
	sctx, cancel := detached(ctx)
	defer cancel()
	var settleErr error
	var outcome string
	switch {
	case err == nil:
		outcome = workRefunded
		settleErr = s.settleRefunded(sctx, r, ref)
	case errors.Is(err, provider.ErrRejected), errors.Is(err, provider.ErrDeclined):
		outcome = workFailed
		s.log.ErrorContext(ctx, "refund refused by the provider; the order keeps its charge until staff act",
			"refund_id", r.ID, "order_id", r.OrderID, "err", err)
		settleErr = s.settleRefundFailed(sctx, r, err)
	case ctx.Err() != nil:
		outcome = workHandedBack
		settleErr = s.releaseRefund(sctx, r)
	default:
		outcome = workRetry
		wait := s.cfg.backoff(r.Attempts)
		s.log.WarnContext(ctx, "payment worker: refund call failed; retrying", "refund_id", r.ID, "attempt", r.Attempts, "in", wait, "err", err)
		settleErr = s.retryRefund(sctx, r, wait, err)
	}
	endWork(span, outcome, err, settleErr)
	if settleErr != nil {
		s.logSettleError(ctx, "refund", r.ID, settleErr)
	}
}

// settleRefunded records the refund and publishes payment.refunded.
func (s *Service) settleRefunded(ctx context.Context, r claimedRefund, ref string) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := markRefunded(tx, r, ref, now); err != nil {
			return err
		}
		return s.pub.Publish(outcomeContext(ctx, r.OrderID, r.IdempotencyKey), tx,
			events.PaymentRefunded{OrderID: r.OrderID, PaymentID: r.PaymentID, RefundID: r.ID, Amount: r.Amount, Currency: s.currency(r.Currency), RefundedAt: now})
	})
}

// settleRefundFailed records a refund the provider refused and publishes
// payment.refund_failed, in one transaction: the order stops counting the
// amount as on its way back, and staff see why.
func (s *Service) settleRefundFailed(ctx context.Context, r claimedRefund, cause error) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := markRefundFailed(tx, r, errText(cause), now); err != nil {
			return err
		}
		return s.pub.Publish(outcomeContext(ctx, r.OrderID, r.IdempotencyKey), tx,
			events.PaymentRefundFailed{OrderID: r.OrderID, PaymentID: r.PaymentID, RefundID: r.ID, Amount: r.Amount,
				Currency: s.currency(r.Currency), Reason: refusal(cause), FailedAt: now})
	})
}

// refusal is a provider's refusal in a few words for the order's
// timeline: the error's text, shortened.
func refusal(cause error) string {
	const most = 120
	text := []rune(errText(cause))
	if len(text) > most {
		text = append(text[:most-1], '…')
	}
	return string(text)
}

func (s *Service) retryRefund(ctx context.Context, r claimedRefund, wait time.Duration, cause error) error {
	return pendRefund(ctx, s.db, r, errText(cause), wait)
}

func (s *Service) releaseRefund(ctx context.Context, r claimedRefund) error {
	return handBackRefund(ctx, s.db, r)
}
