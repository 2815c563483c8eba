package orders

import (
	"regexp"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/apperr"
)

// Bounds on an order.
const (
	maxLines        = 50
	maxLineQuantity = 100
	MaxPageSize     = 100
	// maxPlaceOrderBytes bounds the body of an order: 50 lines take about
	// 3 KiB, generously indented 10. The shop's body limit (1 MiB) would
	// let a body of 300,000 empty lines be decoded, 8 MB each.
	maxPlaceOrderBytes = 64 << 10
)

// Order is an order as the API shows it.
type Order struct {
	ID            string       `json:"id"`
	UserID        string       `json:"user_id"`
	Customer      Customer     `json:"customer"`
	Status        Status       `json:"status"`
	Total         *string      `json:"total"` // decimal; null until stock is reserved
	Currency      string       `json:"currency"`
	PaymentMethod string       `json:"payment_method"`
	PaymentState  PaymentState `json:"payment_state"`
	CancelReason  string       `json:"cancel_reason,omitempty"`
	// Refunded is what succeeded refunds gave back ("0.00" for none),
	// RefundState how much of the charge that is; Refunds lists them.
	Refunded    string      `json:"refunded"`
	RefundState RefundState `json:"refund_state"`
	Refunds     []Refund    `json:"refunds"`
	Items       []Item      `json:"items"`
	Timeline    []TimeEntry `json:"timeline"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`

	// Subtotal is the lines' sum; Total adds the shipping price to it.
	Subtotal        *string        `json:"subtotal"`
	ShippingMethod  ShippingChoice `json:"shipping_method"`
	ShippingAddress *Address       `json:"shipping_address"` // null for pickup
	Fulfilment      Fulfilment     `json:"fulfilment"`

	// *StaffTrace is what staff see besides (absent for customers).
	*StaffTrace

	traceparent *string // the trace context the order was placed in
}

// StaffTrace is the trace an order was placed in, as staff see it.
type StaffTrace struct {
	// TraceID is the id of the trace the order was placed in; null when
	// it was placed untraced.
	TraceID *string `json:"trace_id"`
	// TraceURL opens that trace in the operator's tracing UI
	// (MODSHOP_TRACE_URL_TEMPLATE); null without a template or trace.
	TraceURL *string `json:"trace_url"`
}

// Item is one line. Its name comes from the order module's product copy
// at placement (or once the copy knows the product); name and unit price
// then come from stock.reserved, the prices charged.
type Item struct {
	ProductID string  `json:"product_id"`
	Quantity  int     `json:"quantity"`
	Name      *string `json:"name"`
	UnitPrice *string `json:"unit_price"`
	// RefundedQuantity was refunded by line, ReturnedQuantity came back.
	RefundedQuantity int `json:"refunded_quantity"`
	ReturnedQuantity int `json:"returned_quantity"`
}

// TimeEntry is one step of an order's saga.
type TimeEntry struct {
	At        time.Time `json:"at"`
	Step      string    `json:"step"`
	Detail    string    `json:"detail"`
	MessageID *string   `json:"message_id"`
}

// PlaceOrder is what a customer sends.
type PlaceOrder struct {
	Items         []OrderLine `json:"items"`
	PaymentMethod string      `json:"payment_method"`

	// ShippingMethod is a method's code; "" (absent) is pickup. Both are
	// left out of the JSON when empty, so the idempotency hash of a
	// request without them is the one it had before shipping existed.
	ShippingMethod  string   `json:"shipping_method,omitempty"`
	ShippingAddress *Address `json:"shipping_address,omitempty"`
}

// OrderLine is a product and a quantity.
type OrderLine struct {
	ProductID string `json:"product_id"`
	Quantity  int    `json:"quantity"`
}

var paymentMethodPattern = regexp.MustCompile(`^pm_[A-Za-z0-9_]{1,37}$`)

// validate checks the request and merges lines of the same product. Too
// many lines is one error, and their contents are not looked at: an answer
// must not grow with what a client sends.
func (p *PlaceOrder) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(f, m string) { errs = append(errs, apperr.FieldError{Field: f, Message: m}) }
	lines := p.Items
	switch {
	case len(lines) == 0:
		add("items", "an order needs at least one item")
	case len(lines) > maxLines:
		add("items", "at most 50 items")
		lines = nil
	}
	merged := map[string]int{}
	var order []string
	for _, l := range lines {
		u, err := uuid.Parse(l.ProductID)
		if err != nil || u.String() != l.ProductID {
			add("items.product_id", "must be a product id")
			continue
		}
		if l.Quantity < 1 || l.Quantity > maxLineQuantity {
			add("items.quantity", "must be a whole number from 1 to 100")
			continue
		}
		if _, seen := merged[l.ProductID]; !seen {
			order = append(order, l.ProductID)
		}
		merged[l.ProductID] += l.Quantity
	}
	for _, id := range order {
		if merged[id] > maxLineQuantity {
			add("items.quantity", "at most 100 of one product")
			break
		}
	}
	if !paymentMethodPattern.MatchString(p.PaymentMethod) {
		add("payment_method", "must be a payment method such as pm_card_visa")
	}
	if len(errs) == 0 {
		p.Items = p.Items[:0]
		for _, id := range order {
			p.Items = append(p.Items, OrderLine{ProductID: id, Quantity: merged[id]})
		}
	}
	return errs
}
