// Package events is the order module's public face on the bus: the events
// of the order saga and their stable, versioned names. Other modules may
// import it; nothing else of the order module.
//
// It imports only the standard library. Each event's wire shape is frozen
// in testdata/<event name>.json; a field may be added, while removing,
// renaming or retyping one makes a new version beside the old (docs/bus.md,
// "Evolving an event").
package events

import "time"

// Event names.
const (
	OrderPlacedV1    = "order.placed.v1"
	OrderConfirmedV1 = "order.confirmed.v1"
	OrderCancelledV1 = "order.cancelled.v1"
	OrderRejectedV1  = "order.rejected.v1"
	OrderReturnedV1  = "order.returned.v1"
	// The order asks the payment module to charge or refund; the names say
	// what is asked of payment, the events belong to the order saga.
	PaymentRequestedV1 = "payment.requested.v1"
	RefundRequestedV1  = "payment.refund_requested.v1"
	// Fulfilment of a confirmed order (ADR 0032).
	OrderShippedV1   = "order.shipped.v1"
	OrderDeliveredV1 = "order.delivered.v1"
)

// OrderLine is one product and quantity of an order.
type OrderLine struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

// OrderPlaced starts the saga: stock is to be reserved for every line.
type OrderPlaced struct {
	OrderID  string      `json:"order_id"`
	UserID   string      `json:"user_id"`
	Lines    []OrderLine `json:"lines"`
	PlacedAt time.Time   `json:"placed_at"`
}

// EventName is the event's name on the bus.
func (OrderPlaced) EventName() string { return OrderPlacedV1 }

// OrderConfirmed: the order is paid; its reservation becomes a sale.
type OrderConfirmed struct {
	OrderID string `json:"order_id"`
}

// EventName is the event's name on the bus.
func (OrderConfirmed) EventName() string { return OrderConfirmedV1 }

// OrderCancelled: the order will not be fulfilled; stock goes back.
type OrderCancelled struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// EventName is the event's name on the bus.
func (OrderCancelled) EventName() string { return OrderCancelledV1 }

// OrderRejected: the order could not be accepted; stock goes back.
type OrderRejected struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// EventName is the event's name on the bus.
func (OrderRejected) EventName() string { return OrderRejectedV1 }

// PaymentRequested asks for the order's total to be charged with the
// customer's payment method. The idempotency key of the order request
// travels in the message metadata and on to the payment provider.
// Currency is the total's (ISO 4217, "EUR"): "" in requests published
// before it was added, which were in the shop's currency.
type PaymentRequested struct {
	OrderID       string    `json:"order_id"`
	UserID        string    `json:"user_id"`
	Amount        string    `json:"amount"` // decimal, e.g. "42.50"
	Currency      string    `json:"currency"`
	PaymentMethod string    `json:"payment_method"`
	RequestedAt   time.Time `json:"requested_at"`
}

// EventName is the event's name on the bus.
func (PaymentRequested) EventName() string { return PaymentRequestedV1 }

// RefundRequested asks for the order's captured payment to be refunded:
// in full when RefundID and Amount are empty (a charge that arrived after
// the order ended), else Amount of it, as the refund RefundID (staff
// refunding a confirmed order; payment.refunded names it back).
type RefundRequested struct {
	OrderID  string `json:"order_id"`
	Reason   string `json:"reason"`
	RefundID string `json:"refund_id"` // a UUID; "" for the full refund
	Amount   string `json:"amount"`    // decimal, e.g. "12.50"; "" for the full refund
}

// EventName is the event's name on the bus.
func (RefundRequested) EventName() string { return RefundRequestedV1 }

// OrderShipped: staff handed a confirmed order to a carrier.
type OrderShipped struct {
	OrderID        string    `json:"order_id"`
	UserID         string    `json:"user_id"`
	Carrier        string    `json:"carrier"`
	TrackingNumber string    `json:"tracking_number"`
	ShippedAt      time.Time `json:"shipped_at"`
}

// EventName is the event's name on the bus.
func (OrderShipped) EventName() string { return OrderShippedV1 }

// OrderDelivered: a confirmed order reached its customer (shipped and
// delivered, or collected in store).
type OrderDelivered struct {
	OrderID     string    `json:"order_id"`
	UserID      string    `json:"user_id"`
	DeliveredAt time.Time `json:"delivered_at"`
}

// EventName is the event's name on the bus.
func (OrderDelivered) EventName() string { return OrderDeliveredV1 }

// OrderReturned: staff say the goods of these lines came back; they go
// back in stock. It refunds nothing by itself.
type OrderReturned struct {
	OrderID    string      `json:"order_id"`
	ReturnID   string      `json:"return_id"`
	Lines      []OrderLine `json:"lines"`
	ReturnedAt time.Time   `json:"returned_at"`
}

// EventName is the event's name on the bus.
func (OrderReturned) EventName() string { return OrderReturnedV1 }
