package orders

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var (
	statuses      = []Status{Pending, AwaitingPayment, Confirmed, Rejected, Cancelled}
	paymentStates = []PaymentState{NoPayment, ChargeRequested, Captured, ChargeFailed, RefundRequested, Refunded}
)

// every is every combination of status and payment state, reachable or not.
func every() []State {
	var out []State
	for _, st := range statuses {
		for _, p := range paymentStates {
			out = append(out, State{st, p})
		}
	}
	return out
}

// move is one input that changes a state: what it leads to and asks for.
type move struct {
	in      Input
	to      State
	actions []Action
}

// sagaTable is the saga: for every state an order can reach, each input
// that changes it. Every other input, in every state, changes nothing and
// asks for nothing; CustomerCancel on a final order is refused.
var sagaTable = map[State][]move{
	{Pending, NoPayment}: {
		{StockReserved, State{AwaitingPayment, ChargeRequested}, []Action{RequestPayment}},
		{TotalTooLarge, State{Rejected, NoPayment}, []Action{PublishRejected}},
		{StockRejected, State{Rejected, NoPayment}, []Action{PublishRejected}},
		// A charge nobody asked for yet is given back.
		{PaymentSucceeded, State{Pending, RefundRequested}, []Action{RequestRefund}},
		{CustomerCancel, State{Cancelled, NoPayment}, []Action{PublishCancelled}},
		{DeadlinePassed, State{Cancelled, NoPayment}, []Action{PublishCancelled}},
	},
	{Pending, RefundRequested}: {
		// The order's one payment is spent: it cannot be charged again.
		{TotalTooLarge, State{Rejected, RefundRequested}, []Action{PublishRejected}},
		{StockRejected, State{Rejected, RefundRequested}, []Action{PublishRejected}},
		{PaymentRefunded, State{Pending, Refunded}, nil},
		{CustomerCancel, State{Cancelled, RefundRequested}, []Action{PublishCancelled}},
		{DeadlinePassed, State{Cancelled, RefundRequested}, []Action{PublishCancelled}},
	},
	{Pending, Refunded}: {
		{TotalTooLarge, State{Rejected, Refunded}, []Action{PublishRejected}},
		{StockRejected, State{Rejected, Refunded}, []Action{PublishRejected}},
		{CustomerCancel, State{Cancelled, Refunded}, []Action{PublishCancelled}},
		{DeadlinePassed, State{Cancelled, Refunded}, []Action{PublishCancelled}},
	},
	{AwaitingPayment, ChargeRequested}: {
		{PaymentSucceeded, State{Confirmed, Captured}, []Action{PublishConfirmed}},
		{PaymentFailed, State{Cancelled, ChargeFailed}, []Action{PublishCancelled}},
		{CustomerCancel, State{Cancelled, ChargeRequested}, []Action{PublishCancelled}},
		{DeadlinePassed, State{Cancelled, ChargeRequested}, []Action{PublishCancelled}},
	},
	{Confirmed, Captured}: {
		{PaymentRefunded, State{Confirmed, Refunded}, nil},
	},
	{Confirmed, Refunded}: {},
	{Rejected, NoPayment}: {
		{PaymentSucceeded, State{Rejected, RefundRequested}, []Action{RequestRefund}},
	},
	{Rejected, RefundRequested}: {
		{PaymentRefunded, State{Rejected, Refunded}, nil},
	},
	{Rejected, Refunded}: {},
	{Cancelled, NoPayment}: {
		{PaymentSucceeded, State{Cancelled, RefundRequested}, []Action{RequestRefund}},
	},
	{Cancelled, ChargeRequested}: {
		// The charge answers after the order ended: a success is refunded,
		// a failure recorded.
		{PaymentSucceeded, State{Cancelled, RefundRequested}, []Action{RequestRefund}},
		{PaymentFailed, State{Cancelled, ChargeFailed}, nil},
	},
	{Cancelled, ChargeFailed}: {
		// One payment per order cannot both fail and succeed; if it says
		// it did, the money is given back.
		{PaymentSucceeded, State{Cancelled, RefundRequested}, []Action{RequestRefund}},
	},
	{Cancelled, RefundRequested}: {
		{PaymentRefunded, State{Cancelled, Refunded}, nil},
	},
	// The reported case: a second payment.succeeded for a refunded order
	// asked for no refund and changes nothing.
	{Cancelled, Refunded}: {},
}

// TestNext_EveryStateTimesEveryInput runs every input in every state an
// order can reach: the inputs in sagaTable do what it says, every other
// changes nothing and asks for nothing, and the table's states are exactly
// the states an order can reach.
func TestNext_EveryStateTimesEveryInput(t *testing.T) {
	t.Parallel()
	for from, moves := range sagaTable {
		for _, in := range Inputs {
			want := move{in: in, to: from}
			for _, m := range moves {
				if m.in == in {
					want = m
				}
			}
			var wantErr error
			if in == CustomerCancel && from.Status.Final() {
				wantErr = ErrFinal
			}
			tr, err := Next(from, in)
			if !errors.Is(err, wantErr) || tr.To != want.to || !slices.Equal(tr.Actions, want.actions) || tr.Changed != (want.to != from) {
				t.Errorf("Next(%v, %s) = %+v, %v; want %v %v %v", from, in, tr, err, want.to, want.actions, wantErr)
			}
		}
	}
	if got := reachable(); !sameStates(got, sagaTable) {
		t.Errorf("reachable states %v; the table has %d states", got, len(sagaTable))
	}
}

// TestNext_StatesOnlyMoveForward: in every state, reachable or not, every
// input leaves each dimension where it is or moves it forward, asks for
// nothing without moving, and changes nothing when it arrives again.
func TestNext_StatesOnlyMoveForward(t *testing.T) {
	t.Parallel()
	for _, from := range every() {
		for _, in := range Inputs {
			tr, err := Next(from, in)
			if err != nil && !errors.Is(err, ErrFinal) {
				t.Fatalf("Next(%v, %s): %v", from, in, err)
			}
			if !Forward(from, tr.To) {
				t.Errorf("Next(%v, %s) moves back to %v", from, in, tr.To)
			}
			if from.Status.Final() && tr.To.Status != from.Status {
				t.Errorf("Next(%v, %s) leaves final status %s", from, in, from.Status)
			}
			if len(tr.Actions) > 0 && !tr.Changed {
				t.Errorf("Next(%v, %s) asks for %v without moving: it would ask again for every repeat", from, in, tr.Actions)
			}
			if again, _ := Next(tr.To, in); again.Changed || len(again.Actions) > 0 {
				t.Errorf("%s twice from %v: the repeat moves to %v asking for %v", in, from, again.To, again.Actions)
			}
		}
	}
}

func TestForward_TheOrderOfEachDimension(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from, to State
		forward  bool
	}{
		{State{Pending, NoPayment}, State{Pending, NoPayment}, true},
		{State{Pending, NoPayment}, State{AwaitingPayment, ChargeRequested}, true},
		{State{AwaitingPayment, ChargeRequested}, State{Pending, ChargeRequested}, false},
		{State{Confirmed, Captured}, State{Cancelled, Captured}, false},
		{State{Cancelled, Captured}, State{Confirmed, Captured}, false},
		{State{Cancelled, Captured}, State{Cancelled, ChargeFailed}, false},
		{State{Cancelled, ChargeFailed}, State{Cancelled, RefundRequested}, true},
		{State{Cancelled, Refunded}, State{Cancelled, RefundRequested}, false},
		{State{Cancelled, RefundRequested}, State{Cancelled, Refunded}, true},
		{State{AwaitingPayment, Refunded}, State{Confirmed, Captured}, false},
	}
	for _, c := range cases {
		if got := Forward(c.from, c.to); got != c.forward {
			t.Errorf("Forward(%v, %v) = %v, want %v", c.from, c.to, got, c.forward)
		}
	}
}

// TestNext_EveryPathEndsOnceAndChargesAndRefundsAtMostOnce walks every
// sequence of up to six inputs from a new order: it is confirmed only after
// a reservation and a successful payment, announces at most one ending,
// asks for payment at most once and for a refund at most once.
func TestNext_EveryPathEndsOnceAndChargesAndRefundsAtMostOnce(t *testing.T) {
	t.Parallel()
	var walk func(s State, seen []Input, asked map[Action]int, depth int)
	walk = func(s State, seen []Input, asked map[Action]int, depth int) {
		if depth == 0 {
			return
		}
		for _, in := range Inputs {
			tr, _ := Next(s, in)
			if tr.To.Status == Confirmed && s.Status != Confirmed {
				if !slices.Contains(seen, StockReserved) || in != PaymentSucceeded {
					t.Fatalf("confirmed after %v + %s without reservation and payment", seen, in)
				}
			}
			next := map[Action]int{}
			for a, n := range asked {
				next[a] = n
			}
			for _, a := range tr.Actions {
				next[a]++
			}
			endings := next[PublishConfirmed] + next[PublishRejected] + next[PublishCancelled]
			if endings > 1 || next[RequestPayment] > 1 || next[RequestRefund] > 1 {
				t.Fatalf("after %v + %s: asked for %v", seen, in, next)
			}
			walk(tr.To, append(slices.Clone(seen), in), next, depth-1)
		}
	}
	walk(State{Pending, NoPayment}, nil, map[Action]int{}, 6)
	// From any state that is not final, a passed deadline ends the order.
	for _, s := range every() {
		if tr, _ := Next(s, DeadlinePassed); !tr.To.Status.Final() {
			t.Errorf("deadline from %v leads to %v", s, tr.To)
		}
	}
}

// reachable is every state an order can reach from a new order.
func reachable() []State {
	seen := map[State]bool{{Pending, NoPayment}: true}
	queue := []State{{Pending, NoPayment}}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, in := range Inputs {
			tr, _ := Next(s, in)
			if !seen[tr.To] {
				seen[tr.To] = true
				queue = append(queue, tr.To)
			}
		}
	}
	out := make([]State, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b State) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	return out
}

func sameStates(states []State, table map[State][]move) bool {
	if len(states) != len(table) {
		return false
	}
	for _, s := range states {
		if _, ok := table[s]; !ok {
			return false
		}
	}
	return true
}
