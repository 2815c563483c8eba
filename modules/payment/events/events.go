// Package events is the payment module's public face on the bus: the
// outcomes of charges and refunds. Other modules may import it; nothing
// else of the payment module.
//
// It imports only the standard library. Each event's wire shape is frozen
// in testdata/<event name>.json; a field may be added, while removing,
// renaming or retyping one makes a new version beside the old (docs/bus.md,
// "Evolving an event").
package events

import "time"

// Event names.
const (
	PaymentSucceededV1 = "payment.succeeded.v1"
	PaymentFailedV1    = "payment.failed.v1"
	PaymentRefundedV1  = "payment.refunded.v1"
	// PaymentRefundFailedV1 names a refund the provider refused.
	PaymentRefundFailedV1 = "payment.refund_failed.v1"
)

// PaymentSucceeded: the order's amount was authorized and captured.
// Currency is the amount's (ISO 4217): "" in events published before it
// was added, which were in the shop's currency. So in PaymentRefunded.
type PaymentSucceeded struct {
	OrderID    string    `json:"order_id"`
	PaymentID  string    `json:"payment_id"`
	Amount     string    `json:"amount"`
	Currency   string    `json:"currency"`
	CapturedAt time.Time `json:"captured_at"`
}

// EventName is the event's name on the bus.
func (PaymentSucceeded) EventName() string { return PaymentSucceededV1 }

// PaymentFailed: the charge was declined or could not be made.
type PaymentFailed struct {
	OrderID   string    `json:"order_id"`
	PaymentID string    `json:"payment_id"`
	Reason    string    `json:"reason"` // "declined", "invalid_method", "amount_too_large", "rejected", "provider_unavailable"
	FailedAt  time.Time `json:"failed_at"`
}

// EventName is the event's name on the bus.
func (PaymentFailed) EventName() string { return PaymentFailedV1 }

// PaymentRefunded: a captured payment was refunded in full.
type PaymentRefunded struct {
	OrderID    string    `json:"order_id"`
	PaymentID  string    `json:"payment_id"`
	RefundID   string    `json:"refund_id"`
	Amount     string    `json:"amount"`
	Currency   string    `json:"currency"`
	RefundedAt time.Time `json:"refunded_at"`
}

// EventName is the event's name on the bus.
func (PaymentRefunded) EventName() string { return PaymentRefundedV1 }

// PaymentRefundFailed: the provider refused a refund for good (a refund it
// did not answer is asked again, never reported failed): the money stays
// with the shop, and the order may ask for a refund of that amount again.
// Reason is the provider's answer in a few words.
type PaymentRefundFailed struct {
	OrderID   string    `json:"order_id"`
	PaymentID string    `json:"payment_id"`
	RefundID  string    `json:"refund_id"`
	Amount    string    `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason"`
	FailedAt  time.Time `json:"failed_at"`
}

// EventName is the event's name on the bus.
func (PaymentRefundFailed) EventName() string { return PaymentRefundFailedV1 }
