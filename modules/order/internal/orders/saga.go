// Package orders is the order module's inside: placing orders with
// idempotency keys, the order saga (its state machine, persisted with each
// order), deadlines, and the HTTP handlers.
package orders

import "errors"

// Status is where an order stands.
type Status string

// The order statuses; confirmed, rejected and cancelled are final.
const (
	Pending         Status = "pending"
	AwaitingPayment Status = "awaiting_payment"
	Confirmed       Status = "confirmed"
	Rejected        Status = "rejected"
	Cancelled       Status = "cancelled"
)

// Final reports whether nothing more can happen to the order's status.
func (s Status) Final() bool { return s == Confirmed || s == Rejected || s == Cancelled }

// Input is something that happens to an order.
type Input string

// The saga's inputs.
const (
	StockReserved    Input = "stock_reserved"
	StockRejected    Input = "stock_rejected"
	PaymentSucceeded Input = "payment_succeeded"
	PaymentFailed    Input = "payment_failed"
	CustomerCancel   Input = "customer_cancel"
	DeadlinePassed   Input = "deadline_passed"
)

// Action is what the saga asks the world to do after a transition.
type Action string

// The saga's actions, each an event it publishes.
const (
	RequestPayment   Action = "request_payment"   // payment.requested.v1
	PublishConfirmed Action = "publish_confirmed" // order.confirmed.v1
	PublishRejected  Action = "publish_rejected"  // order.rejected.v1
	PublishCancelled Action = "publish_cancelled" // order.cancelled.v1
	RequestRefund    Action = "request_refund"    // payment.refund_requested.v1
)

// ErrFinal: the order is final and cannot be cancelled any more.
var ErrFinal = errors.New("the order is final")

// Transition is the outcome of an input: the new status (the same when
// nothing changes) and the actions to take.
type Transition struct {
	To      Status
	Actions []Action
	Changed bool
}

// Next is the order saga as a pure function. Inputs that do not apply to
// the current status change nothing: duplicates and late arrivals are
// expected on an at-least-once bus. A charge that arrives for an order that
// is no longer waiting for it is refunded.
func Next(from Status, in Input) (Transition, error) {
	stay := Transition{To: from}
	switch in {
	case StockReserved:
		if from == Pending {
			return Transition{To: AwaitingPayment, Actions: []Action{RequestPayment}, Changed: true}, nil
		}
	case StockRejected:
		if from == Pending {
			return Transition{To: Rejected, Actions: []Action{PublishRejected}, Changed: true}, nil
		}
	case PaymentSucceeded:
		switch from {
		case AwaitingPayment:
			return Transition{To: Confirmed, Actions: []Action{PublishConfirmed}, Changed: true}, nil
		case Cancelled, Rejected, Pending:
			return Transition{To: from, Actions: []Action{RequestRefund}}, nil
		}
	case PaymentFailed:
		if from == AwaitingPayment {
			return Transition{To: Cancelled, Actions: []Action{PublishCancelled}, Changed: true}, nil
		}
	case CustomerCancel:
		if from.Final() {
			return stay, ErrFinal
		}
		return Transition{To: Cancelled, Actions: []Action{PublishCancelled}, Changed: true}, nil
	case DeadlinePassed:
		if !from.Final() {
			return Transition{To: Cancelled, Actions: []Action{PublishCancelled}, Changed: true}, nil
		}
	}
	return stay, nil
}
