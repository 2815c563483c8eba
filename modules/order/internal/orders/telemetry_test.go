package orders

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/modshop/modshop/platform/auth"
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

// TestPlace_KeepsTheTraceContextItRunsIn: Place stores the trace context
// of its ctx, none when ctx is in no span (tracing off); staff see the
// trace id and link, or nulls; a customer sees neither field.
func TestPlace_KeepsTheTraceContextItRunsIn(t *testing.T) {
	t.Parallel()
	s := NewService(openOrders(t), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config{TraceURLTemplate: "https://traces.example/t/{trace_id}"})
	customer := auth.Identity{UserID: uuid.NewString()}
	staff := auth.Identity{UserID: uuid.NewString(), Roles: []string{auth.RoleAdmin}}
	req := func() PlaceOrder {
		return PlaceOrder{Items: []OrderLine{{ProductID: uuid.NewString(), Quantity: 1}}, PaymentMethod: "pm_card_visa"}
	}
	stored := func(id string) *string {
		t.Helper()
		var tp *string
		if err := s.db.Raw(`SELECT traceparent FROM orders WHERE id = ?`, id).Scan(&tp).Error; err != nil {
			t.Fatal(err)
		}
		return tp
	}

	plain, err := s.Place(context.Background(), customer, req(), "")
	if err != nil {
		t.Fatal(err)
	}
	if tp := stored(plain.ID); tp != nil {
		t.Errorf("an order placed outside any span keeps traceparent %q, want NULL", *tp)
	}
	seen, err := s.Get(context.Background(), staff, plain.ID)
	if err != nil {
		t.Fatal(err)
	}
	if seen.StaffTrace == nil || seen.TraceID != nil || seen.TraceURL != nil {
		t.Errorf("staff see %+v of an untraced order, want trace_id and trace_url null", seen.StaffTrace)
	}

	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "POST /api/v1/orders")
	defer span.End()
	traced, err := s.Place(ctx, customer, req(), "")
	if err != nil {
		t.Fatal(err)
	}
	id := span.SpanContext().TraceID().String()
	if tp := stored(traced.ID); tp == nil || *tp != "00-"+id+"-"+span.SpanContext().SpanID().String()+"-01" {
		t.Errorf("an order placed in span %s keeps traceparent %v", span.SpanContext().SpanID(), tp)
	}
	seen, err = s.Get(context.Background(), staff, traced.ID)
	if err != nil {
		t.Fatal(err)
	}
	if seen.StaffTrace == nil || seen.TraceID == nil || *seen.TraceID != id || seen.TraceURL == nil || *seen.TraceURL != "https://traces.example/t/"+id {
		t.Errorf("staff see %+v, want trace %s and its link", seen.StaffTrace, id)
	}
	mine, err := s.Get(context.Background(), customer, traced.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mine.StaffTrace != nil {
		t.Errorf("the customer sees %+v, want no trace fields", mine.StaffTrace)
	}
}
