package orders

import (
	"errors"
	"slices"
	"testing"
)

func TestNext_SagaTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from    Status
		in      Input
		to      Status
		actions []Action
		err     error
	}{
		{Pending, StockReserved, AwaitingPayment, []Action{RequestPayment}, nil},
		{Pending, StockRejected, Rejected, []Action{PublishRejected}, nil},
		{Pending, CustomerCancel, Cancelled, []Action{PublishCancelled}, nil},
		{Pending, DeadlinePassed, Cancelled, []Action{PublishCancelled}, nil},
		{AwaitingPayment, PaymentSucceeded, Confirmed, []Action{PublishConfirmed}, nil},
		{AwaitingPayment, PaymentFailed, Cancelled, []Action{PublishCancelled}, nil},
		{AwaitingPayment, CustomerCancel, Cancelled, []Action{PublishCancelled}, nil},
		{AwaitingPayment, DeadlinePassed, Cancelled, []Action{PublishCancelled}, nil},
		// A charge that arrives after cancellation is refunded.
		{Cancelled, PaymentSucceeded, Cancelled, []Action{RequestRefund}, nil},
		// Duplicates and late arrivals change nothing.
		{AwaitingPayment, StockReserved, AwaitingPayment, nil, nil},
		{Confirmed, PaymentSucceeded, Confirmed, nil, nil},
		{Cancelled, StockReserved, Cancelled, nil, nil},
		{Cancelled, PaymentFailed, Cancelled, nil, nil},
		{Confirmed, DeadlinePassed, Confirmed, nil, nil},
		{Rejected, StockReserved, Rejected, nil, nil},
		// A final order cannot be cancelled.
		{Confirmed, CustomerCancel, Confirmed, nil, ErrFinal},
		{Cancelled, CustomerCancel, Cancelled, nil, ErrFinal},
		{Rejected, CustomerCancel, Rejected, nil, ErrFinal},
	}
	for _, c := range cases {
		tr, err := Next(c.from, c.in)
		if !errors.Is(err, c.err) || tr.To != c.to || !slices.Equal(tr.Actions, c.actions) {
			t.Errorf("Next(%s, %s) = %+v, %v; want %s %v %v", c.from, c.in, tr, err, c.to, c.actions, c.err)
		}
	}
}

// TestNext_EveryPathEndsFinal walks every sequence of up to five inputs
// from pending: the saga never leaves a final status, and confirmation
// happens only after a reservation and a successful payment.
func TestNext_EveryPathEndsFinal(t *testing.T) {
	t.Parallel()
	inputs := []Input{StockReserved, StockRejected, PaymentSucceeded, PaymentFailed, CustomerCancel, DeadlinePassed}
	var walk func(s Status, seen []Input, depth int)
	walk = func(s Status, seen []Input, depth int) {
		if depth == 0 {
			return
		}
		for _, in := range inputs {
			tr, _ := Next(s, in)
			if s.Final() && tr.To != s {
				t.Fatalf("after %v: left final status %s for %s", seen, s, tr.To)
			}
			if tr.To == Confirmed && s != Confirmed {
				if !slices.Contains(seen, StockReserved) || in != PaymentSucceeded {
					t.Fatalf("confirmed after %v + %s without reservation and payment", seen, in)
				}
			}
			walk(tr.To, append(slices.Clone(seen), in), depth-1)
		}
	}
	walk(Pending, nil, 5)
	// From any non-final status, a passed deadline ends the order.
	for _, s := range []Status{Pending, AwaitingPayment} {
		if tr, _ := Next(s, DeadlinePassed); !tr.To.Final() {
			t.Errorf("deadline from %s leads to %s", s, tr.To)
		}
	}
}
