package ledger

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/telemetry"
)

// RecordRefund records, in the handler's transaction tx, a full refund of
// the order's captured payment for the worker to carry out. An order
// without a captured payment has nothing to refund (logged); a payment
// already being refunded, or refunded, is left alone.
func (s *Service) RecordRefund(ctx context.Context, tx *gorm.DB, req orderevents.RefundRequested) error {
	if !isUUID(req.OrderID) {
		return fmt.Errorf("payment.refund_requested with invalid order id %q", req.OrderID)
	}
	pay, found, err := paymentOfOrder(tx, req.OrderID)
	if err != nil {
		return err
	}
	if !found || pay.Status != "captured" {
		status := "none"
		if found {
			status = pay.Status
		}
		s.log.WarnContext(ctx, "refund requested for an order without a captured payment; nothing to refund",
			"order_id", req.OrderID, "payment_status", status, "reason", req.Reason)
		return nil
	}
	key := req.OrderID
	if md, ok := bus.MessageMetadata(ctx); ok && md.IdempotencyKey != "" {
		key = md.IdempotencyKey
	}
	recorded, err := insertRefund(tx, newID(), pay.ID, pay.Amount, boundReason(req.Reason), key, telemetry.Traceparent(ctx))
	if err != nil {
		return fmt.Errorf("record refund of order %s: %w", req.OrderID, err)
	}
	if recorded {
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
