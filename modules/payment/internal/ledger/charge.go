package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/payment/internal/provider"
)

// claimedPayment is a payment the worker holds as 'processing'.
type claimedPayment struct {
	ID               string
	OrderID          string
	Amount           string
	Currency         string // "" for the shop's
	Method           string
	IdempotencyKey   string
	Attempts         int // including this one: the claim's token
	CaptureAttempted bool
	Traceparent      string // the recording handler's trace context; "" for none
}

// claimPayments claims up to n payments that are due, or whose claim
// outlived its lease (claimDuePayments).
func (s *Service) claimPayments(ctx context.Context, n int) ([]claimedPayment, error) {
	return claimDuePayments(ctx, s.db, s.cfg.lease(), n)
}

// charge authorizes and captures a claimed payment, then settles what the
// provider answered.
// The job runs in a span "payment.work charge", a child of the trace
// context recorded with the payment: the provider calls, the settle and
// the outcome event it publishes continue the order's trace.
func (s *Service) charge(ctx context.Context, p claimedPayment) {
	ctx, span := s.startWork(ctx, "charge", p.Traceparent, p.Attempts,
		attribute.String(attrPaymentID, p.ID), attribute.String(attrOrderID, p.OrderID))
	defer span.End()
	authorization, capture, err := s.authorizeAndCapture(ctx, p)
	sctx, cancel := detached(ctx)
	defer cancel()
	var settleErr error
	var outcome string
	switch {
	case err == nil:
		outcome = workCaptured
		settleErr = s.settleCaptured(sctx, p, authorization, capture)
	case errors.Is(err, provider.ErrDeclined):
		outcome = workFailed
		settleErr = s.settleFailed(sctx, p, "declined", err)
	case errors.Is(err, provider.ErrInvalidMethod):
		outcome = workFailed
		settleErr = s.settleFailed(sctx, p, "invalid_method", err)
	case authorization == "" && !p.CaptureAttempted && errors.Is(err, provider.ErrAmountTooLarge):
		// A provider's limit is a business outcome: the order is told at
		// once. Nothing was authorized, so no money moved.
		outcome = workFailed
		settleErr = s.settleFailed(sctx, p, "amount_too_large", err)
	case authorization == "" && !p.CaptureAttempted && errors.Is(err, provider.ErrRejected):
		// A definite no before anything was authorized: no money moved,
		// and asking again would be refused again.
		outcome = workFailed
		settleErr = s.settleFailed(sctx, p, "rejected", err)
	case ctx.Err() != nil:
		outcome = workHandedBack
		settleErr = s.releasePayment(sctx, p, authorization) // stopping: the next start tries again at once
	case authorization == "" && !p.CaptureAttempted && p.Attempts >= s.cfg.MaxAttempts:
		outcome = workFailed
		settleErr = s.settleFailed(sctx, p, "provider_unavailable", err)
	default:
		// Once a capture may have been sent, the payment is never reported
		// failed: the money may be taken. It is retried, with the same key,
		// until the provider says what happened.
		outcome = workRetry
		settleErr = s.retryPayment(sctx, p, authorization, err)
	}
	endWork(span, outcome, err, settleErr)
	if settleErr != nil {
		s.logSettleError(ctx, "payment", p.ID, settleErr)
	}
}

// authorizeAndCapture makes the two provider calls, each with its own
// timeout and the payment id as idempotency key. authorization is set once
// the provider authorized.
func (s *Service) authorizeAndCapture(ctx context.Context, p claimedPayment) (authorization, capture string, err error) {
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.ProviderTimeout)
	authorization, err = s.provider.Authorize(callCtx, provider.AuthorizeRequest{
		IdempotencyKey: p.ID, Method: p.Method, Amount: p.Amount, Reference: p.OrderID})
	cancel()
	if err != nil {
		return "", "", fmt.Errorf("authorize: %w", err)
	}
	callCtx, cancel = context.WithTimeout(ctx, s.cfg.ProviderTimeout)
	defer cancel()
	capture, err = s.provider.Capture(callCtx, provider.CaptureRequest{
		IdempotencyKey: p.ID, Authorization: authorization, Amount: p.Amount})
	if err != nil {
		return authorization, "", fmt.Errorf("capture: %w", err)
	}
	return authorization, capture, nil
}

// settleCaptured records the capture and publishes payment.succeeded, in
// one transaction, if the claim still holds.
func (s *Service) settleCaptured(ctx context.Context, p claimedPayment, authorization, capture string) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := markCaptured(tx, p, authorization, capture, now); err != nil {
			return err
		}
		return s.pub.Publish(outcomeContext(ctx, p.OrderID, p.IdempotencyKey), tx,
			events.PaymentSucceeded{OrderID: p.OrderID, PaymentID: p.ID, Amount: p.Amount, Currency: s.currency(p.Currency), CapturedAt: now})
	})
}

// settleFailed records a failure and publishes payment.failed.
func (s *Service) settleFailed(ctx context.Context, p claimedPayment, reason string, cause error) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	if reason == "provider_unavailable" {
		s.log.WarnContext(ctx, "payment failed: the provider did not answer", "payment_id", p.ID, "order_id", p.OrderID, "attempts", p.Attempts, "err", cause)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := markFailed(tx, p, reason, errText(cause), now); err != nil {
			return err
		}
		return s.pub.Publish(outcomeContext(ctx, p.OrderID, p.IdempotencyKey), tx,
			events.PaymentFailed{OrderID: p.OrderID, PaymentID: p.ID, Reason: reason, FailedAt: now})
	})
}

// retryPayment puts the payment back as pending, due after the backoff.
func (s *Service) retryPayment(ctx context.Context, p claimedPayment, authorization string, cause error) error {
	attempted := authorization != "" || p.CaptureAttempted
	wait := s.cfg.backoff(p.Attempts)
	if attempted && p.Attempts >= s.cfg.MaxAttempts {
		s.log.ErrorContext(ctx, "payment worker: capture still unanswered; retrying until the provider answers",
			"payment_id", p.ID, "order_id", p.OrderID, "attempts", p.Attempts, "err", cause)
	} else {
		s.log.WarnContext(ctx, "payment worker: provider call failed; retrying", "payment_id", p.ID, "attempt", p.Attempts, "in", wait, "err", cause)
	}
	var auth *string
	if authorization != "" {
		auth = &authorization
	}
	return pendPayment(ctx, s.db, p, errText(cause), wait, auth, attempted)
}

// releasePayment hands a claim back, the attempt not counted.
func (s *Service) releasePayment(ctx context.Context, p claimedPayment, authorization string) error {
	return handBackPayment(ctx, s.db, p, authorization != "")
}
