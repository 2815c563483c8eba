package ledger

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// The store is the only code that touches the payments schema: payments
// (this file) and refunds (store_refunds.go). Functions that take tx run
// in the caller's transaction. A settle writes only while the worker's
// claim holds (the row 'processing' with the claim's attempt count), and
// returns errClaimLost when it does not.

// newPayment is a payment to record for an order.
type newPayment struct {
	ID, OrderID, UserID, Amount, Method, IdempotencyKey string
	Currency                                            string // "" for the shop's
	// Traceparent is the recording handler's trace context ("" for none),
	// for the worker's job to continue.
	Traceparent string
}

// insertPayment records a 'pending' payment; it reports false, having
// changed nothing, when the order has a payment already.
func insertPayment(tx *gorm.DB, p newPayment) (bool, error) {
	res := tx.Exec(`INSERT INTO payments (id, order_id, user_id, amount, method, status, idempotency_key, traceparent, currency)
		VALUES (?, ?, ?, ?::numeric, ?, 'pending', ?, nullif(?, ''), nullif(?, '')) ON CONFLICT (order_id) DO NOTHING`,
		p.ID, p.OrderID, p.UserID, p.Amount, p.Method, p.IdempotencyKey, p.Traceparent, p.Currency)
	if res.Error != nil {
		return false, fmt.Errorf("record payment of order %s: %w", p.OrderID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// insertClaimedPayment records a payment claimed already by the worker
// the handler hands it to: 'processing', attempt 1, its lease from now.
// It reports false, having changed nothing, when the order has a payment
// already.
func insertClaimedPayment(tx *gorm.DB, p newPayment) (bool, error) {
	res := tx.Exec(`INSERT INTO payments (id, order_id, user_id, amount, method, status, attempts, claimed_at, idempotency_key, traceparent, currency)
		VALUES (?, ?, ?, ?::numeric, ?, 'processing', 1, now(), ?, nullif(?, ''), nullif(?, '')) ON CONFLICT (order_id) DO NOTHING`,
		p.ID, p.OrderID, p.UserID, p.Amount, p.Method, p.IdempotencyKey, p.Traceparent, p.Currency)
	if res.Error != nil {
		return false, fmt.Errorf("record payment of order %s: %w", p.OrderID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// insertInvalidMethodPayment records a payment failed at once for a
// method that cannot be one; it reports false, having changed nothing,
// when the order has a payment already.
func insertInvalidMethodPayment(tx *gorm.DB, p newPayment, at time.Time) (bool, error) {
	res := tx.Exec(`INSERT INTO payments (id, order_id, user_id, amount, method, status, idempotency_key, failure_reason, last_error, failed_at, traceparent, currency)
		VALUES (?, ?, ?, ?::numeric, '(invalid)', 'failed', ?, 'invalid_method', 'the payment method is not a method id', ?, nullif(?, ''), nullif(?, ''))
		ON CONFLICT (order_id) DO NOTHING`,
		p.ID, p.OrderID, p.UserID, p.Amount, p.IdempotencyKey, at, p.Traceparent, p.Currency)
	if res.Error != nil {
		return false, fmt.Errorf("record payment of order %s: %w", p.OrderID, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// orderPayment is an order's payment as a refund needs it.
type orderPayment struct {
	ID     string
	Amount string
	Status string
}

// paymentOfOrder reads an order's payment; ok is false when it has none.
func paymentOfOrder(tx *gorm.DB, orderID string) (orderPayment, bool, error) {
	var pay []orderPayment
	if err := tx.Raw(`SELECT id, amount::text AS amount, status FROM payments WHERE order_id = ?`, orderID).Scan(&pay).Error; err != nil {
		return orderPayment{}, false, fmt.Errorf("find payment of order %s: %w", orderID, err)
	}
	if len(pay) == 0 {
		return orderPayment{}, false, nil
	}
	return pay[0], true, nil
}

// paymentsOfOrder lists an order's payments, oldest first, with what each
// nets: every one to staff, only the user's own to anyone else. Their
// Refunds are not filled in. A captured payment's status says how much of
// it succeeded refunds gave back: captured, partly_refunded, refunded.
func paymentsOfOrder(ctx context.Context, db *gorm.DB, orderID, userID string, staff bool) ([]Payment, error) {
	var payments []Payment
	err := db.WithContext(ctx).Raw(`SELECT p.id, p.order_id, p.user_id, p.amount::text AS amount, coalesce(p.currency, '') AS currency, p.method,
			CASE WHEN p.status <> 'captured' OR r.refunded = 0 THEN p.status
			     WHEN r.refunded < p.amount THEN 'partly_refunded' ELSE 'refunded' END AS status,
			p.failure_reason, p.attempts, p.created_at, p.updated_at, p.captured_at, p.failed_at,
			r.refunded::numeric(10,2)::text AS refunded_amount,
			(CASE WHEN p.status = 'captured' THEN p.amount ELSE 0 END - r.refunded)::numeric(10,2)::text AS net_amount
		FROM payments p,
		     LATERAL (SELECT coalesce(sum(amount), 0) AS refunded FROM refunds WHERE payment_id = p.id AND status = 'succeeded') r
		WHERE p.order_id = ? AND (? OR p.user_id::text = ?)
		ORDER BY p.created_at, p.id`, orderID, staff, userID).Scan(&payments).Error
	if err != nil {
		return nil, fmt.Errorf("payments of order %s: %w", orderID, err)
	}
	return payments, nil
}

// claimDuePayments claims up to n payments that are due, or whose claim
// outlived lease (a worker crashed after calling the provider, or hangs),
// in one statement. A claim taken over from a crashed worker may have
// captured already, so it counts as a capture attempted.
func claimDuePayments(ctx context.Context, db *gorm.DB, lease time.Duration, n int) ([]claimedPayment, error) {
	var rows []claimedPayment
	err := db.WithContext(ctx).Raw(`UPDATE payments p
		SET status = 'processing', attempts = p.attempts + 1, claimed_at = now(), updated_at = now(),
		    capture_attempted = p.capture_attempted OR p.status = 'processing'
		FROM (SELECT id FROM payments
		       WHERE (status = 'pending' AND next_attempt_at <= now())
		          OR (status = 'processing' AND claimed_at < now() - make_interval(secs => ?))
		       ORDER BY next_attempt_at
		       LIMIT ? FOR UPDATE SKIP LOCKED) due
		WHERE p.id = due.id
		RETURNING p.id, p.order_id, p.amount::text AS amount, coalesce(p.currency, '') AS currency, p.method, p.idempotency_key, p.attempts, p.capture_attempted,
		          coalesce(p.traceparent, '') AS traceparent`,
		seconds(lease), n).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim payments: %w", err)
	}
	return rows, nil
}

// markCaptured records a claimed payment's capture.
func markCaptured(tx *gorm.DB, p claimedPayment, authorization, capture string, at time.Time) error {
	res := tx.Exec(`UPDATE payments SET status = 'captured', provider_authorization = ?, provider_capture = ?,
			captured_at = ?, updated_at = ?, last_error = NULL
		WHERE id = ? AND status = 'processing' AND attempts = ?`,
		authorization, capture, at, at, p.ID, p.Attempts)
	return claimHeld(res, "payment", p.ID)
}

// markFailed records a claimed payment's failure, for reason.
func markFailed(tx *gorm.DB, p claimedPayment, reason, lastError string, at time.Time) error {
	res := tx.Exec(`UPDATE payments SET status = 'failed', failure_reason = ?, last_error = ?, failed_at = ?, updated_at = ?
		WHERE id = ? AND status = 'processing' AND attempts = ?`,
		reason, lastError, at, at, p.ID, p.Attempts)
	return claimHeld(res, "payment", p.ID)
}

// pendPayment puts a claimed payment back as pending, due after wait,
// keeping the authorization when there is one (nil: none) and whether a
// capture may have been sent.
func pendPayment(ctx context.Context, db *gorm.DB, p claimedPayment, lastError string, wait time.Duration, authorization *string, attempted bool) error {
	res := db.WithContext(ctx).Exec(`UPDATE payments SET status = 'pending', last_error = ?,
			next_attempt_at = now() + make_interval(secs => ?), updated_at = now(),
			provider_authorization = coalesce(?, provider_authorization), capture_attempted = capture_attempted OR ?
		WHERE id = ? AND status = 'processing' AND attempts = ?`,
		lastError, seconds(wait), authorization, attempted, p.ID, p.Attempts)
	return claimHeld(res, "payment", p.ID)
}

// handBackPayment gives a claim back, the attempt not counted.
func handBackPayment(ctx context.Context, db *gorm.DB, p claimedPayment, authorized bool) error {
	res := db.WithContext(ctx).Exec(`UPDATE payments SET status = 'pending', attempts = attempts - 1, updated_at = now(),
			capture_attempted = capture_attempted OR ?
		WHERE id = ? AND status = 'processing' AND attempts = ?`, authorized, p.ID, p.Attempts)
	return claimHeld(res, "payment", p.ID)
}

// nextAttemptAt is when the next pending payment or refund falls due; nil
// when none is pending.
func nextAttemptAt(ctx context.Context, db *gorm.DB) (*time.Time, error) {
	var next struct{ At *time.Time }
	err := db.WithContext(ctx).Raw(`SELECT least(
			(SELECT min(next_attempt_at) FROM payments WHERE status = 'pending'),
			(SELECT min(next_attempt_at) FROM refunds WHERE status = 'pending')) AS at`).Scan(&next).Error
	return next.At, err
}

// claimHeld turns the result of a claim-guarded UPDATE into an error.
func claimHeld(res *gorm.DB, kind, id string) error {
	if res.Error != nil {
		return fmt.Errorf("settle %s %s: %w", kind, id, res.Error)
	}
	if res.RowsAffected == 0 {
		return errClaimLost
	}
	return nil
}

// seconds renders d for make_interval(secs => ?).
func seconds(d time.Duration) float64 { return d.Seconds() }
