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

// RecordRefund records, in the handler's transaction tx, a refund of the
// order's captured payment for the worker to carry out: Amount of it as
// the refund RefundID (staff refunding a confirmed order), or, when the
// request names no refund, all of it unless it is being refunded or was
// (a charge that came after the order ended). An order without a captured
// payment has nothing to refund, and a refund that would take the
// payment's refunds past its capture is not recorded (both logged: the
// order module bounds what it asks for, so neither should happen). A
// refund id recorded before is left alone.
func (s *Service) RecordRefund(ctx context.Context, tx *gorm.DB, req orderevents.RefundRequested) error {
	if !isUUID(req.OrderID) || (req.RefundID != "" && !isUUID(req.RefundID)) {
		return fmt.Errorf("payment.refund_requested with invalid order id %q or refund id %q", req.OrderID, req.RefundID)
	}
	amount, ok := normaliseAmount(req.Amount)
	if req.RefundID != "" && !ok {
		return fmt.Errorf("payment.refund_requested of order %s with invalid amount %q", req.OrderID, req.Amount)
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
	r := newRefund{ID: req.RefundID, PaymentID: pay.ID, Amount: amount, Reason: boundReason(req.Reason),
		IdempotencyKey: key, Traceparent: telemetry.Traceparent(ctx), Whole: req.RefundID == ""}
	if r.Whole {
		r.ID, r.Amount = newID(), pay.Amount
	}
	recorded, err := insertRefund(tx, r)
	if err != nil {
		return fmt.Errorf("record refund of order %s: %w", req.OrderID, err)
	}
	if recorded {
		s.announce(tx, refunds)
	} else if !r.Whole {
		s.log.WarnContext(ctx, "refund not recorded: recorded before, or more than the capture has left",
			"order_id", req.OrderID, "refund_id", r.ID, "amount", r.Amount)
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
