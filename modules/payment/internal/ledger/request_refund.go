package ledger

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/bus"
)

// RecordRefund records, in the handler's transaction tx, a full refund of
// the order's captured payment for the worker to carry out. An order
// without a captured payment has nothing to refund (logged); a payment
// already being refunded, or refunded, is left alone.
func (s *Service) RecordRefund(ctx context.Context, tx *gorm.DB, req orderevents.RefundRequested) error {
	if !isUUID(req.OrderID) {
		return fmt.Errorf("payment.refund_requested with invalid order id %q", req.OrderID)
	}
	var pay []struct {
		ID     string
		Amount string
		Status string
	}
	if err := tx.Raw(`SELECT id, amount::text AS amount, status FROM payments WHERE order_id = ?`, req.OrderID).Scan(&pay).Error; err != nil {
		return fmt.Errorf("find payment of order %s: %w", req.OrderID, err)
	}
	if len(pay) == 0 || pay[0].Status != "captured" {
		status := "none"
		if len(pay) > 0 {
			status = pay[0].Status
		}
		s.log.WarnContext(ctx, "refund requested for an order without a captured payment; nothing to refund",
			"order_id", req.OrderID, "payment_status", status, "reason", req.Reason)
		return nil
	}
	key := req.OrderID
	if md, ok := bus.MessageMetadata(ctx); ok && md.IdempotencyKey != "" {
		key = md.IdempotencyKey
	}
	res := tx.Exec(`INSERT INTO refunds (id, payment_id, amount, reason, status, idempotency_key)
		VALUES (?, ?, ?::numeric, ?, 'pending', ?)
		ON CONFLICT (payment_id) WHERE status <> 'failed' DO NOTHING`,
		newID(), pay[0].ID, pay[0].Amount, boundReason(req.Reason), key)
	if res.Error != nil {
		return fmt.Errorf("record refund of order %s: %w", req.OrderID, res.Error)
	}
	if res.RowsAffected == 1 {
		s.announce(tx, refunds)
	}
	return nil
}

// boundReason keeps a reason storable: valid UTF-8, no NUL, 200 characters.
func boundReason(r string) string {
	r = strings.ReplaceAll(strings.ToValidUTF8(r, "?"), "\x00", "")
	if utf8.RuneCountInString(r) > 200 {
		r = string([]rune(r)[:200])
	}
	return r
}
