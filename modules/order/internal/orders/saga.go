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

// stage is the status's place in the forward order: pending, then
// awaiting payment, then one of the final statuses.
func (s Status) stage() int {
	switch s {
	case Pending:
		return 0
	case AwaitingPayment:
		return 1
	}
	return 2
}

// PaymentState is where the order's payment stands, as the order knows it.
type PaymentState string

// The payment states, in their forward order: none, requested, then
// captured or failed, then refund requested, then refunded.
const (
	NoPayment       PaymentState = "none"
	ChargeRequested PaymentState = "requested"
	Captured        PaymentState = "captured"
	ChargeFailed    PaymentState = "failed"
	RefundRequested PaymentState = "refund_requested"
	Refunded        PaymentState = "refunded"
)

// stage is the payment state's place in the forward order.
func (p PaymentState) stage() int {
	switch p {
	case NoPayment:
		return 0
	case ChargeRequested:
		return 1
	case Captured, ChargeFailed:
		return 2
	case RefundRequested:
		return 3
	}
	return 4
}

// State is where an order stands on each of its dimensions. Each moves
// forward only.
type State struct {
	Status  Status
	Payment PaymentState
}

// Forward reports whether going from one state to another moves each
// dimension forward or leaves it as it is. Two states of the same stage
// (confirmed and cancelled, captured and failed) are not a move forward
// from each other.
func Forward(from, to State) bool {
	return (from.Status == to.Status || from.Status.stage() < to.Status.stage()) &&
		(from.Payment == to.Payment || from.Payment.stage() < to.Payment.stage())
}

// Input is something that happens to an order.
type Input string

// The saga's inputs.
const (
	StockReserved Input = "stock_reserved"
	// TotalTooLarge: the stock is reserved, but the lines at their
	// reserved prices come to more than an order can hold.
	TotalTooLarge    Input = "total_too_large"
	StockRejected    Input = "stock_rejected"
	PaymentSucceeded Input = "payment_succeeded"
	PaymentFailed    Input = "payment_failed"
	PaymentRefunded  Input = "payment_refunded"
	CustomerCancel   Input = "customer_cancel"
	DeadlinePassed   Input = "deadline_passed"
)

// Inputs are all the saga's inputs.
var Inputs = []Input{StockReserved, TotalTooLarge, StockRejected, PaymentSucceeded, PaymentFailed, PaymentRefunded, CustomerCancel, DeadlinePassed}

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

// Transition is the outcome of an input: the new state (the same when
// nothing changes) and the actions to take.
type Transition struct {
	To      State
	Actions []Action
	Changed bool // To differs from the state the input arrived in
}

// Next is the order saga as a pure function. Every state it moves to is
// forward of the one it leaves (Forward), and every action it asks for
// moves the state, so an input that arrives again, or late, for a state
// already passed changes nothing and asks for nothing: duplicates (also
// under new message ids) and late arrivals are expected on an
// at-least-once bus. A charge that arrives for an order that is no longer
// waiting for it is refunded, once.
func Next(from State, in Input) (Transition, error) {
	to, actions := from, []Action(nil)
	switch in {
	case StockReserved:
		if from == (State{Pending, NoPayment}) {
			to, actions = State{AwaitingPayment, ChargeRequested}, []Action{RequestPayment}
		}
	case TotalTooLarge, StockRejected:
		if from.Status == Pending {
			to.Status, actions = Rejected, []Action{PublishRejected}
		}
	case PaymentSucceeded:
		switch {
		case from == State{AwaitingPayment, ChargeRequested}:
			to, actions = State{Confirmed, Captured}, []Action{PublishConfirmed}
		case from.Status != Confirmed && (from.Payment == NoPayment || from.Payment == ChargeRequested || from.Payment == ChargeFailed):
			to.Payment, actions = RefundRequested, []Action{RequestRefund}
		}
	case PaymentFailed:
		switch {
		case from == State{AwaitingPayment, ChargeRequested}:
			to, actions = State{Cancelled, ChargeFailed}, []Action{PublishCancelled}
		case from.Payment == ChargeRequested: // the order ended while the charge was under way
			to.Payment = ChargeFailed
		}
	case PaymentRefunded:
		if from.Payment == Captured || from.Payment == RefundRequested {
			to.Payment = Refunded
		}
	case CustomerCancel:
		if from.Status.Final() {
			return Transition{To: from}, ErrFinal
		}
		to.Status, actions = Cancelled, []Action{PublishCancelled}
	case DeadlinePassed:
		if !from.Status.Final() {
			to.Status, actions = Cancelled, []Action{PublishCancelled}
		}
	}
	return Transition{To: to, Actions: actions, Changed: to != from}, nil
}
