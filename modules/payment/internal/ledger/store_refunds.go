package ledger

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// newRefund is a refund to record.
type newRefund struct {
	ID, PaymentID, Amount, Reason, IdempotencyKey string
	// Traceparent is the recording handler's trace context ("" for none).
	Traceparent string
	// Whole: the refund of the whole capture, recorded only while the
	// payment has no refund that has not failed.
	Whole bool
}

// insertRefund records a 'pending' refund of a payment; it reports false,
// having changed nothing, when a refund with its id exists, when it would
// take the refunds of the payment that have not failed past its capture,
// or, for a whole refund, when the payment is being refunded or was. The
// payment's row is locked first, as the trigger refunds_within_capture
// does, so that refunds of one payment are summed one after the other.
func insertRefund(tx *gorm.DB, r newRefund) (bool, error) {
	if err := tx.Exec(`SELECT 1 FROM payments WHERE id = ? FOR UPDATE`, r.PaymentID).Error; err != nil {
		return false, err
	}
	res := tx.Exec(`INSERT INTO refunds (id, payment_id, amount, reason, status, idempotency_key, traceparent)
		SELECT ?, p.id, ?::numeric, ?, 'pending', ?, nullif(?, '')
		  FROM payments p,
		       LATERAL (SELECT coalesce(sum(amount), 0) AS taken, count(*) AS n FROM refunds WHERE payment_id = p.id AND status <> 'failed') r
		 WHERE p.id = ? AND r.taken + ?::numeric <= p.amount AND NOT (? AND r.n > 0)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.Amount, r.Reason, r.IdempotencyKey, r.Traceparent, r.PaymentID, r.Amount, r.Whole)
	if res.Error != nil {
		return false, res.Error
	}
	return res.RowsAffected == 1, nil
}

// refundsOfPayments lists the refunds of the payments ids, oldest first.
func refundsOfPayments(ctx context.Context, db *gorm.DB, ids []string) ([]Refund, error) {
	var refunds []Refund
	err := db.WithContext(ctx).Raw(`SELECT id, payment_id, amount::text AS amount, reason, status, failure_reason,
			created_at, updated_at, refunded_at
		FROM refunds WHERE payment_id IN ? ORDER BY created_at, id`, ids).Scan(&refunds).Error
	return refunds, err
}

// claimDueRefunds claims up to n refunds that are due, or whose claim
// outlived lease, in one statement.
func claimDueRefunds(ctx context.Context, db *gorm.DB, lease time.Duration, n int) ([]claimedRefund, error) {
	var rows []claimedRefund
	err := db.WithContext(ctx).Raw(`UPDATE refunds r
		SET status = 'processing', attempts = r.attempts + 1, claimed_at = now(), updated_at = now()
		FROM (SELECT id FROM refunds
		       WHERE (status = 'pending' AND next_attempt_at <= now())
		          OR (status = 'processing' AND claimed_at < now() - make_interval(secs => ?))
		       ORDER BY next_attempt_at
		       LIMIT ? FOR UPDATE SKIP LOCKED) due, payments p
		WHERE r.id = due.id AND p.id = r.payment_id
		RETURNING r.id, r.payment_id, p.order_id, r.amount::text AS amount, coalesce(p.currency, '') AS currency, r.idempotency_key, r.attempts, p.provider_capture AS capture,
		          coalesce(r.traceparent, '') AS traceparent`,
		seconds(lease), n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim refunds: %w", err)
	}
	return rows, nil
}

// markRefunded records a claimed refund's success.
func markRefunded(tx *gorm.DB, r claimedRefund, ref string, at time.Time) error {
	res := tx.Exec(`UPDATE refunds SET status = 'succeeded', provider_refund = ?, refunded_at = ?, updated_at = ?, last_error = NULL
		WHERE id = ? AND status = 'processing' AND attempts = ?`, ref, at, at, r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}

// markRefundFailed records a claimed refund the provider refused.
func markRefundFailed(tx *gorm.DB, r claimedRefund, lastError string, at time.Time) error {
	res := tx.Exec(`UPDATE refunds SET status = 'failed', failure_reason = 'rejected', last_error = ?, failed_at = ?, updated_at = ?
		WHERE id = ? AND status = 'processing' AND attempts = ?`, lastError, at, at, r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}

// pendRefund puts a claimed refund back as pending, due after wait.
func pendRefund(ctx context.Context, db *gorm.DB, r claimedRefund, lastError string, wait time.Duration) error {
	res := db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'pending', last_error = ?,
			next_attempt_at = now() + make_interval(secs => ?), updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, lastError, seconds(wait), r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}

// handBackRefund gives a claim back, the attempt not counted.
func handBackRefund(ctx context.Context, db *gorm.DB, r claimedRefund) error {
	res := db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'pending', attempts = attempts - 1, updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, r.ID, r.Attempts)
	return claimHeld(res, "refund", r.ID)
}
