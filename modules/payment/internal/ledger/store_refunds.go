package ledger

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// insertRefund records a 'pending' refund of a payment, with the
// recording handler's trace context ("" for none); it reports false,
// having changed nothing, when the payment is being refunded or was.
func insertRefund(tx *gorm.DB, id, paymentID, amount, reason, key, traceparent string) (bool, error) {
	res := tx.Exec(`INSERT INTO refunds (id, payment_id, amount, reason, status, idempotency_key, traceparent)
		VALUES (?, ?, ?::numeric, ?, 'pending', ?, nullif(?, ''))
		ON CONFLICT (payment_id) WHERE status <> 'failed' DO NOTHING`,
		id, paymentID, amount, reason, key, traceparent)
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
func markRefundFailed(ctx context.Context, db *gorm.DB, r claimedRefund, lastError string) error {
	res := db.WithContext(ctx).Exec(`UPDATE refunds SET status = 'failed', failure_reason = 'rejected', last_error = ?, failed_at = now(), updated_at = now()
		WHERE id = ? AND status = 'processing' AND attempts = ?`, lastError, r.ID, r.Attempts)
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
