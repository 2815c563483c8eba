package orders

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	paymentevents "github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/platform/bus"
)

// OnRefundFailed records a refund the payment provider refused: the
// order's refund reads failed with the reason, its amount no longer counts
// as on its way back (staff may ask again), the lines it named may be
// refunded again, and the timeline says so, once however often the event
// arrives. A refund the order never asked for (that of a charge that came
// after the order ended) gets the timeline entry alone, so staff see it
// (the bus's inbox applies each message once; the payment module
// publishes one payment.refund_failed per refund).
func (s *Service) OnRefundFailed(ctx context.Context, tx *gorm.DB, ev paymentevents.PaymentRefundFailed) error {
	if _, ok, err := lockOrder(tx, ev.OrderID); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s for unknown order %s", paymentevents.PaymentRefundFailedV1, ev.OrderID)
		}
		return err
	}
	known, failed, err := markRefundFailed(tx, ev.OrderID, ev.RefundID, ev.Reason, ev.FailedAt.UTC())
	if err != nil || (known && !failed) {
		return err // a repeat: counted before
	}
	md, _ := bus.MessageMetadata(ctx)
	detail := fmt.Sprintf("refund of %s refused by the payment provider: %s", ev.Amount, ev.Reason)
	if !known {
		detail = fmt.Sprintf("refund %s of a late charge, %s, refused by the payment provider: %s", ev.RefundID, ev.Amount, ev.Reason)
	}
	return addTimeline(tx, ev.OrderID, timelineEntry{step: "refund_failed", messageID: md.MessageID, detail: detail})
}
