package orders

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// lineState is one line of an order as refunds and returns bound it.
type lineState struct {
	ProductID        string
	Quantity         int
	RefundedQuantity int
	ReturnedQuantity int
}

// lockedItems reads an order's lines by product, the order's row locked
// by the caller.
func lockedItems(tx *gorm.DB, orderID string) (map[string]lineState, error) {
	var rows []lineState
	if err := tx.Raw(`SELECT product_id, quantity, refunded_quantity, returned_quantity FROM order_items WHERE order_id = ?`,
		orderID).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("lines of order %s: %w", orderID, err)
	}
	out := make(map[string]lineState, len(rows))
	for _, r := range rows {
		out[r.ProductID] = r
	}
	return out, nil
}

// refundLines counts lines as refunded and returns what they are worth at
// their unit prices, in one statement. Parameters are numbered as in
// insertOrder.
func refundLines(tx *gorm.DB, orderID string, lines []OrderLine) (string, error) {
	products, quantities := lineArrays(lines)
	var amount string
	err := tx.Raw(`
		WITH refunded AS (
			UPDATE order_items i SET refunded_quantity = i.refunded_quantity + l.quantity
			  FROM unnest($2::uuid[], $3::int[]) AS l(product_id, quantity)
			 WHERE i.order_id = $1 AND i.product_id = l.product_id
			RETURNING i.unit_price * l.quantity AS amount
		)
		SELECT coalesce(sum(amount), 0)::numeric(10,2)::text FROM refunded`, orderID, products, quantities).Scan(&amount).Error
	if err != nil {
		return "", fmt.Errorf("refund lines of order %s: %w", orderID, err)
	}
	return amount, nil
}

func lineArrays(lines []OrderLine) ([]string, []int) {
	products := make([]string, len(lines))
	quantities := make([]int, len(lines))
	for i, l := range lines {
		products[i], quantities[i] = l.ProductID, l.Quantity
	}
	return products, quantities
}

// refundable is what is left to refund of an order (its total less every
// refund it asked for or heard of that did not fail), and whether amount fits in it.
func refundable(tx *gorm.DB, orderID, amount string) (left string, fits bool, err error) {
	var out struct {
		Left string
		Fits bool
	}
	err = tx.Raw(`SELECT (o.total_amount - r.taken)::numeric(10,2)::text AS left, ?::numeric <= o.total_amount - r.taken AS fits
		FROM orders o, LATERAL (SELECT coalesce(sum(amount), 0) AS taken FROM order_refunds WHERE order_id = o.id AND status <> 'failed') r
		WHERE o.id = ?`, amount, orderID).Scan(&out).Error
	if err != nil {
		return "", false, fmt.Errorf("refundable amount of order %s: %w", orderID, err)
	}
	return out.Left, out.Fits, nil
}

// refundRow is a refund an order asks for.
type refundRow struct {
	ID, OrderID, Amount, Reason, Key string
	Hash                             []byte
	Lines                            []OrderLine // none for a refund of an amount
}

// insertRefundRequest records a requested refund and its lines.
func insertRefundRequest(tx *gorm.DB, r refundRow) error {
	products, quantities := lineArrays(r.Lines)
	err := tx.Exec(`
		WITH refund AS (
			INSERT INTO order_refunds (id, order_id, amount, reason, status, idempotency_key, request_hash)
			VALUES ($1, $2, $3::numeric, $4, 'requested', $5, $6)
			RETURNING id
		)
		INSERT INTO order_refund_lines (refund_id, product_id, quantity)
		SELECT refund.id, l.product_id, l.quantity FROM refund, unnest($7::uuid[], $8::int[]) AS l(product_id, quantity)`,
		r.ID, r.OrderID, r.Amount, r.Reason, r.Key, r.Hash, products, quantities).Error
	if err != nil {
		return fmt.Errorf("record refund of order %s: %w", r.OrderID, err)
	}
	return nil
}

// refundKeyUse is the request hash an order's refund idempotency key was
// used with; ok is false when it was not.
func refundKeyUse(tx *gorm.DB, orderID, key string) (hash []byte, ok bool, err error) {
	return keyHash(tx, `SELECT request_hash FROM order_refunds WHERE order_id = ? AND idempotency_key = ?`, orderID, key)
}

// returnKeyUse is refundKeyUse for returns.
func returnKeyUse(tx *gorm.DB, orderID, key string) (hash []byte, ok bool, err error) {
	return keyHash(tx, `SELECT request_hash FROM order_returns WHERE order_id = ? AND idempotency_key = ?`, orderID, key)
}

func keyHash(tx *gorm.DB, query, orderID, key string) ([]byte, bool, error) {
	var rows []struct{ RequestHash []byte }
	if err := tx.Raw(query, orderID, key).Scan(&rows).Error; err != nil {
		return nil, false, fmt.Errorf("idempotency key %q of order %s: %w", key, orderID, err)
	}
	if len(rows) == 0 {
		return nil, false, nil
	}
	return rows[0].RequestHash, true, nil
}

// insertReturn records goods that came back and counts them on the lines.
func insertReturn(tx *gorm.DB, id, orderID, key string, hash []byte, lines []OrderLine) error {
	products, quantities := lineArrays(lines)
	err := tx.Exec(`
		WITH ret AS (
			INSERT INTO order_returns (id, order_id, idempotency_key, request_hash)
			VALUES ($1, $2, nullif($3, ''), $4)
			RETURNING id
		), lines AS (
			INSERT INTO order_return_lines (return_id, product_id, quantity)
			SELECT ret.id, l.product_id, l.quantity FROM ret, unnest($5::uuid[], $6::int[]) AS l(product_id, quantity)
		)
		UPDATE order_items i SET returned_quantity = i.returned_quantity + l.quantity
		  FROM unnest($5::uuid[], $6::int[]) AS l(product_id, quantity)
		 WHERE i.order_id = $2 AND i.product_id = l.product_id`,
		id, orderID, key, hash, products, quantities).Error
	if err != nil {
		return fmt.Errorf("record return of order %s: %w", orderID, err)
	}
	return nil
}

// markRefundSucceeded settles a refund the order asked for and adds it to
// the order's refunded amount, once: known is false when the order has no
// refund with that id, settled false when it was settled before.
func markRefundSucceeded(tx *gorm.DB, orderID, refundID string, at time.Time) (amount string, known, settled bool, err error) {
	var rows []struct {
		Amount  string
		Settled bool
	}
	err = tx.Raw(`
		WITH known AS (
			SELECT id, amount, status FROM order_refunds WHERE id = $1 AND order_id = $2
		), settled AS (
			UPDATE order_refunds r SET status = 'succeeded', refunded_at = $3
			  FROM known WHERE r.id = known.id AND known.status = 'requested'
			RETURNING r.amount
		), counted AS (
			UPDATE orders o SET refunded_amount = o.refunded_amount + settled.amount, updated_at = $3
			  FROM settled WHERE o.id = $2
		)
		SELECT known.amount::text AS amount, EXISTS (SELECT FROM settled) AS settled FROM known`,
		refundID, orderID, at).Scan(&rows).Error
	if err != nil {
		return "", false, false, fmt.Errorf("settle refund %s of order %s: %w", refundID, orderID, err)
	}
	if len(rows) == 0 {
		return "", false, false, nil
	}
	return rows[0].Amount, true, rows[0].Settled, nil
}

// recordLateRefund records the refund of a charge that came after the
// order ended, as payment.refunded reported it, once.
func recordLateRefund(tx *gorm.DB, orderID, refundID, amount string, at time.Time) error {
	err := tx.Exec(`
		WITH refund AS (
			INSERT INTO order_refunds (id, order_id, amount, reason, status, refunded_at)
			VALUES ($1, $2, $3::numeric, 'charged after the order ended', 'succeeded', $4)
			ON CONFLICT (id) DO NOTHING
			RETURNING amount
		)
		UPDATE orders o SET refunded_amount = o.refunded_amount + refund.amount FROM refund WHERE o.id = $2`,
		refundID, orderID, amount, at).Error
	if err != nil {
		return fmt.Errorf("record refund %s of order %s: %w", refundID, orderID, err)
	}
	return nil
}

// refundsOf reads the refunds of orders, oldest first, with their lines.
func refundsOf(ctx context.Context, db *gorm.DB, ids []string) (map[string][]Refund, error) {
	var rows []struct {
		OrderID string
		Refund
	}
	if err := db.WithContext(ctx).Raw(`SELECT order_id, id, amount::text AS amount, status, reason, created_at, refunded_at, failed_at, failure_reason
		FROM order_refunds WHERE order_id IN ? ORDER BY order_id, created_at, id`, ids).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("order refunds: %w", err)
	}
	out := map[string][]Refund{}
	if len(rows) == 0 {
		return out, nil
	}
	refundIDs := make([]string, len(rows))
	for i, r := range rows {
		refundIDs[i] = r.ID
	}
	var lines []struct {
		RefundID string
		OrderLine
	}
	if err := db.WithContext(ctx).Raw(`SELECT refund_id, product_id, quantity FROM order_refund_lines WHERE refund_id IN ? ORDER BY refund_id, product_id`,
		refundIDs).Scan(&lines).Error; err != nil {
		return nil, fmt.Errorf("order refund lines: %w", err)
	}
	byRefund := map[string][]OrderLine{}
	for _, l := range lines {
		byRefund[l.RefundID] = append(byRefund[l.RefundID], l.OrderLine)
	}
	for _, r := range rows {
		r.Lines = byRefund[r.ID]
		if r.Lines == nil {
			r.Lines = []OrderLine{}
		}
		out[r.OrderID] = append(out[r.OrderID], r.Refund)
	}
	return out, nil
}

// markRefundFailed marks a requested refund of the order failed and gives
// its lines back to what may be refunded, once: known is false when the
// order has no refund with that id, failed false when it was settled
// (failed or succeeded) before.
func markRefundFailed(tx *gorm.DB, orderID, refundID, reason string, at time.Time) (known, failed bool, err error) {
	var rows []struct{ Failed bool }
	err = tx.Raw(`
		WITH known AS (
			SELECT id, status FROM order_refunds WHERE id = $1 AND order_id = $2
		), failed AS (
			UPDATE order_refunds r SET status = 'failed', failed_at = $3, failure_reason = left($4, 200)
			  FROM known WHERE r.id = known.id AND known.status = 'requested'
			RETURNING r.id
		), released AS (
			UPDATE order_items i SET refunded_quantity = i.refunded_quantity - l.quantity
			  FROM order_refund_lines l, failed
			 WHERE l.refund_id = failed.id AND i.order_id = $2 AND i.product_id = l.product_id
		)
		SELECT EXISTS (SELECT FROM failed) AS failed FROM known`,
		refundID, orderID, at, reason).Scan(&rows).Error
	if err != nil {
		return false, false, fmt.Errorf("refund %s of order %s failed: %w", refundID, orderID, err)
	}
	if len(rows) == 0 {
		return false, false, nil
	}
	return true, rows[0].Failed, nil
}
