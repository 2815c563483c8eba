// Package provider is the payment module's door to a payment service
// provider: the Provider interface the ledger charges and refunds through,
// and TestMode, the built-in provider with the test payment methods that
// users of common payment APIs know (pm_card_visa, pm_card_chargeDeclined).
package provider

import (
	"context"
	"errors"
)

// Provider authorizes, captures and refunds money. Every call carries an
// idempotency key: repeating a call with the same key (after a timeout, a
// crash, a retry) returns the first call's answer and moves no money
// twice. Keys are per operation: the same key may authorize and capture.
// Callers bound each call with ctx; a call cut short by ctx may or may not
// have happened at the provider, and is repeated with the same key.
type Provider interface {
	// Authorize reserves Amount on the payment method and returns the
	// authorization's id.
	Authorize(ctx context.Context, r AuthorizeRequest) (string, error)
	// Capture takes the authorized money and returns the capture's id.
	Capture(ctx context.Context, r CaptureRequest) (string, error)
	// Refund gives captured money back and returns the refund's id.
	Refund(ctx context.Context, r RefundRequest) (string, error)
}

// AuthorizeRequest asks for Amount (a decimal string such as "12.50") on
// the customer's payment Method. Reference names the order, for the
// provider's records.
type AuthorizeRequest struct {
	IdempotencyKey string
	Method         string
	Amount         string
	Reference      string
}

// CaptureRequest captures an authorization in full.
type CaptureRequest struct {
	IdempotencyKey string
	Authorization  string
	Amount         string
}

// RefundRequest refunds a capture in full.
type RefundRequest struct {
	IdempotencyKey string
	Capture        string
	Amount         string
}

// Definite answers. Any other error means the provider could not be asked
// or did not answer: the call may be repeated with the same key.
var (
	// ErrDeclined: the payment method was declined.
	ErrDeclined = errors.New("payment declined")
	// ErrInvalidMethod: the provider knows no such payment method.
	ErrInvalidMethod = errors.New("invalid payment method")
	// ErrAmountTooLarge: the amount is more than the provider takes in
	// one charge.
	ErrAmountTooLarge = errors.New("amount too large for the payment provider")
	// ErrRejected: the request can never succeed as made (an unknown
	// authorization, a capture already refunded, a key reused with other
	// parameters).
	ErrRejected = errors.New("request rejected by the payment provider")
)
