package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

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
	IdempotencyKey string
	Attempts       int // including this one: the claim's token
	Capture        string
}

// claimRefunds claims up to n refunds that are due, or whose claim
// outlived its lease, in one statement.
func (s *Service) claimRefunds(ctx context.Context, n int) ([]claimedRefund, error) {
	var rows []claimedRefund
	err := s.db.WithContext(ctx).Raw(`UPDATE refunds r
		SET status = 'processing', attempts = r.attempts + 1, claimed_at = now(), updated_at = now()
		FROM (SELECT id FROM refunds
		       WHERE (status = 'pending' AND next_attempt_at <= now())
		          OR (status = 'processing' AND claimed_at < now() - make_interval(secs => ?))
		       ORDER BY next_attempt_at
		       LIMIT ? FOR UPDATE SKIP LOCKED) due, payments p
		WHERE r.id = due.id AND p.id = r.payment_id
		RETURNING r.id, r.payment_id, p.order_id, r.amount::text AS amount, r.idempotency_key, r.attempts, p.provider_capture AS capture`,
		seconds(s.cfg.lease()), n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim refunds: %w", err)
	}
	return rows, nil
}

// refund refunds a claimed refund through the provider, with the refund's
// id as idempotency key, and settles the answer. Money owed back is never
// given up on: a provider that does not answer is asked again, with the
// backoff capped at MaxBackoff, until it does. Only a definite refusal
// fails the refund.
func (s *Service) refund(ctx context.Context, r claimedRefund) {
	callCtx, cancel := context.WithTimeout(ctx, s.cfg.ProviderTimeout)
	ref, err := s.provider.Refund(callCtx, provider.RefundRequest{IdempotencyKey: r.ID, Capture: r.Capture, Amount: r.Amount})
	cancel()
	sctx, cancel := detached(ctx)
	defer cancel()
	var settleErr error
	switch {
	case err == nil:
		settleErr = s.settleRefunded(sctx, r, ref)
	case errors.Is(err, provider.ErrRejected), errors.Is(err, provider.ErrDeclined):
		s.log.Error("refund refused by the provider; the order keeps its charge until staff act",
			"refund_id", r.ID, "order_id", r.OrderID, "err", err)
		settleErr = s.settleRefundFailed(sctx, r, err)
	case ctx.Err() != nil:
		settleErr = s.releaseRefund(sctx, r)
	default:
		wait := s.cfg.backoff(r.Attempts)
		s.log.Warn("payment worker: refund call failed; retrying", "refund_id", r.ID, "attempt", r.Attempts, "in", wait, "err", err)
		settleErr = s.retryRefund(sctx, r, wait, err)
	}
	if settleErr != nil {
		s.logSettleError("refund", r.ID, settleErr)
	}
}

// settleRefunded records the refund and publishes payment.refunded.
func (s *Service) settleRefunded(ctx context.Context, r claimedRefund, ref string) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE refunds SET status = 'succeeded', provider_refund = ?, refunded_at = ?, updated_at = ?, last_error = NULL
			WHERE id = ? AND status = 'processing' AND attempts = ?`, ref, now, now, r.ID, r.Attempts)
		if err := claimHeld(res, "refund", r.ID); err != nil {
			return err
		}
		return s.pub.Publish(outcomeContext(ctx, r.OrderID, r.IdempotencyKey), tx,
			events.PaymentRefunded{OrderID: r.OrderID, PaymentID: r.PaymentID, RefundID: r.ID, Amount: r.Amount, RefundedAt: now})
	})
}

// settleRefundFailed records a refund the provider refused. No event:
// the contract has none, and the order has nothing it could do.
func (s *Service) settleRefundFailed(ctx context.Context, r claimedRefund, cause error) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'failed', failure_reason = 'rejected', last_error = ?, failed_at = now(), updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, errText(cause), r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}

func (s *Service) retryRefund(ctx context.Context, r claimedRefund, wait time.Duration, cause error) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'pending', last_error = ?,
			next_attempt_at = now() + make_interval(secs => ?), updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, errText(cause), seconds(wait), r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}

func (s *Service) releaseRefund(ctx context.Context, r claimedRefund) error {
	res := s.db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'pending', attempts = attempts - 1, updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}
