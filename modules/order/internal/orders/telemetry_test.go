package orders

import (
	"testing"
	"time"
)

// TestSagaStages_WhichStepEndsWhichStage: applying the reservation ends
// placed_to_reserved (at the reservation's publication) and
// reserved_to_payment_requested (at the step); confirming ends the other
// three; no other step ends a stage.
func TestSagaStages_WhichStepEndsWhichStage(t *testing.T) {
	t.Parallel()
	placed := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	event, at := placed.Add(2*time.Second), placed.Add(3*time.Second)
	requested := placed.Add(time.Second)
	got := func(from, to State, requested *time.Time) map[string]time.Duration {
		out := map[string]time.Duration{}
		for _, s := range sagaStages(from, to, placed, requested, event, at) {
			out[s.stage] = s.to.Sub(s.from)
		}
		return out
	}
	check := func(name string, got, want map[string]time.Duration) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: stages %v, want %v", name, got, want)
			return
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: stages %v, want %v", name, got, want)
				return
			}
		}
	}
	check("reserved", got(State{Pending, NoPayment}, State{AwaitingPayment, ChargeRequested}, nil),
		map[string]time.Duration{stagePlacedToReserved: 2 * time.Second, stageReservedToPaymentRequested: time.Second})
	check("confirmed", got(State{AwaitingPayment, ChargeRequested}, State{Confirmed, Captured}, &requested),
		map[string]time.Duration{stagePaymentRequestedToPaid: time.Second, stagePaidToConfirmed: time.Second, stagePlacedToConfirmed: 3 * time.Second})
	check("confirmed, asked for before the column existed", got(State{AwaitingPayment, ChargeRequested}, State{Confirmed, Captured}, nil),
		map[string]time.Duration{stagePaidToConfirmed: time.Second, stagePlacedToConfirmed: 3 * time.Second})
	for _, c := range []struct{ from, to State }{
		{State{Pending, NoPayment}, State{Rejected, NoPayment}},
		{State{Pending, NoPayment}, State{Cancelled, NoPayment}},
		{State{AwaitingPayment, ChargeRequested}, State{Cancelled, ChargeFailed}},
		{State{Cancelled, ChargeRequested}, State{Cancelled, RefundRequested}},
		{State{Confirmed, Captured}, State{Confirmed, Refunded}},
	} {
		check(string(c.from.Status)+"→"+string(c.to.Status), got(c.from, c.to, &requested), map[string]time.Duration{})
	}
}

// TestTraceURL_EscapesTheIDIntoTheTemplate: every {trace_id} is replaced,
// path-escaped; no template or no trace id makes no link.
func TestTraceURL_EscapesTheIDIntoTheTemplate(t *testing.T) {
	t.Parallel()
	if got := traceURL("http://t/trace/{trace_id}?find={trace_id}", "ab/c d"); got == nil || *got != "http://t/trace/ab%2Fc%20d?find=ab%2Fc%20d" {
		t.Errorf("traceURL = %v", got)
	}
	if traceURL("", "abc") != nil || traceURL("http://t/{trace_id}", "") != nil {
		t.Error("a link without a template or a trace id")
	}
}
