package order_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/order/events"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

const traceTemplate = "http://localhost:16686/trace/{trace_id}"

// traced starts a span for a request to be sent in (the caller's side of
// it) and returns its trace id and the option that sends its traceparent.
func traced(t *testing.T) (traceID string, opt testkit.Option) {
	t.Helper()
	telemetrytest.Install()
	ctx, span := telemetry.Tracer("test").Start(context.Background(), "customer places an order")
	t.Cleanup(func() { span.End() })
	return telemetry.TraceID(ctx), testkit.Header(telemetry.KeyTraceparent, telemetry.Traceparent(ctx))
}

// rawOrder reads an order as token, as the JSON object it is.
func (o *orders) rawOrder(t *testing.T, token, id string) map[string]any {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(r.Body), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedTraceparent is the trace context the order's row keeps ("" for NULL).
func (o *orders) storedTraceparent(t *testing.T, id string) string {
	t.Helper()
	var tp *string
	if err := o.DB.Raw(`SELECT traceparent FROM orders WHERE id = ?`, id).Scan(&tp).Error; err != nil {
		t.Fatal(err)
	}
	if tp == nil {
		return ""
	}
	return *tp
}

// TestPlace_StoresTheTraceItWasPlacedIn: an order placed inside a trace
// keeps that trace's context; staff see its trace id and, with
// MODSHOP_TRACE_URL_TEMPLATE, the link to it; customers see neither. (An
// order placed untraced: orders.TestPlace_KeepsTheTraceContextItRunsIn.)
func TestPlace_StoresTheTraceItWasPlacedIn(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{TraceURLTemplate: traceTemplate})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	traceID, inTrace := traced(t)

	r, placed := o.place(t, ann, 1, inTrace)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place in a trace: %d %s", r.Status, r.Body)
	}
	if got := telemetry.TraceIDOf(o.storedTraceparent(t, placed.ID)); got != traceID {
		t.Errorf("the order's row keeps traceparent %q (trace %q), want one of trace %s", o.storedTraceparent(t, placed.ID), got, traceID)
	}
	seen := o.rawOrder(t, staff, placed.ID)
	if seen["trace_id"] != traceID {
		t.Errorf("staff see trace_id %v, want %s", seen["trace_id"], traceID)
	}
	if want := "http://localhost:16686/trace/" + traceID; seen["trace_url"] != want {
		t.Errorf("staff see trace_url %v, want %s", seen["trace_url"], want)
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	o.api.Do("GET", "/api/v1/orders", nil, testkit.Bearer(staff)).Decode(t, &page)
	if len(page.Items) != 1 || page.Items[0]["trace_id"] != traceID {
		t.Errorf("the staff order list: %v, want the order with trace_id %s", page.Items, traceID)
	}
	mine := o.rawOrder(t, ann, placed.ID)
	for _, key := range []string{"trace_id", "trace_url"} {
		if _, ok := mine[key]; ok {
			t.Errorf("the customer sees %s: %v", key, mine)
		}
	}
}

// TestTraceURL_NullWithoutTheSetting: without MODSHOP_TRACE_URL_TEMPLATE
// staff see the trace id and no link.
func TestTraceURL_NullWithoutTheSetting(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	traceID, inTrace := traced(t)
	r, placed := o.place(t, ann, 1, inTrace)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	seen := o.rawOrder(t, staff, placed.ID)
	if seen["trace_id"] != traceID {
		t.Errorf("staff see trace_id %v, want %s", seen["trace_id"], traceID)
	}
	if v, ok := seen["trace_url"]; !ok || v != nil {
		t.Errorf("trace_url %v (present %v) without a template, want null", v, ok)
	}
}

// TestCheckTraceURLTemplate: the template must be an absolute http(s) URL
// holding {trace_id}; empty turns links off.
func TestCheckTraceURLTemplate(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", traceTemplate, "https://grafana.example.com/explore?traceId={trace_id}",
		"http://127.0.0.1:16686/trace/{trace_id}?uiFind={trace_id}"} {
		if err := order.CheckTraceURLTemplate(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for bad, says := range map[string]string{
		"http://localhost:16686/trace/":          "{trace_id}",
		"http://localhost:16686/trace/{traceid}": "{trace_id}",
		"localhost:16686/trace/{trace_id}":       "http",
		"/trace/{trace_id}":                      "http",
		"javascript:alert(1)//{trace_id}":        "http",
		"ftp://example.com/{trace_id}":           "http",
		"http:///trace/{trace_id}":               "http",
	} {
		err := order.CheckTraceURLTemplate(bad)
		if err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want a refusal that says %s", bad, err, says)
		}
	}
}

// TestDeadlineSweep_IsARootSpanLinkedToTheOrdersTrace: the sweep that
// cancels an order past its deadline works in a trace of its own (a root
// span "order.sweep deadline"), linked to the trace the order was placed
// in.
func TestDeadlineSweep_IsARootSpanLinkedToTheOrdersTrace(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	o := startOrders(t, order.Config{StockTimeout: 300 * time.Millisecond, DeadlineInterval: 50 * time.Millisecond})
	_, ann := o.Auth.Customer()
	traceID, inTrace := traced(t)
	r, placed := o.place(t, ann, 1, inTrace)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	moduletest.WaitFor(t, o.Events, "order.cancelled of "+placed.ID, func(ev events.OrderCancelled) bool { return ev.OrderID == placed.ID })

	var sweep sdktrace.ReadOnlySpan
	testkit.Eventually(t, "the sweep's span of order "+placed.ID, func() bool {
		for _, s := range telemetrytest.Named(rec.Ended(), "order.sweep deadline") {
			if id, _ := telemetrytest.Attr(s, "modshop.order.id"); id == placed.ID {
				sweep = s
				return true
			}
		}
		return false
	})
	if sweep.Parent().IsValid() {
		t.Errorf("the sweep's span has parent %s, want a root", sweep.Parent().SpanID())
	}
	if got := sweep.SpanContext().TraceID().String(); got == traceID {
		t.Errorf("the sweep works in the order's trace %s, want a trace of its own", got)
	}
	linked := false
	for _, l := range sweep.Links() {
		linked = linked || l.SpanContext.TraceID().String() == traceID
	}
	if !linked {
		t.Errorf("the sweep's span links to %v, want the order's trace %s", sweep.Links(), traceID)
	}
	if out, _ := telemetrytest.Attr(sweep, "modshop.sweep.outcome"); out != "cancelled" {
		t.Errorf("the sweep's outcome %q, want cancelled", out)
	}
}

// stageCounts reads how many orders each saga stage observed.
func stageCounts(t *testing.T, o *orders) map[string]uint64 {
	t.Helper()
	families, err := o.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, f := range families {
		if f.GetName() != "modshop_order_saga_stage_seconds" {
			continue
		}
		if f.GetType().String() != "HISTOGRAM" {
			t.Fatalf("modshop_order_saga_stage_seconds is a %s, want a histogram", f.GetType())
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					out[l.GetValue()] = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return out
}

// TestSagaStages_EachObservedOncePerConfirmedOrder: a confirmed order
// observes each stage of modshop_order_saga_stage_seconds once, also when
// stock.reserved and payment.succeeded come again for it.
func TestSagaStages_EachObservedOncePerConfirmedOrder(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	stages := []string{"placed_to_reserved", "reserved_to_payment_requested", "payment_requested_to_paid", "paid_to_confirmed", "placed_to_confirmed"}
	for _, s := range stages {
		if n, ok := stageCounts(t, o)[s]; !ok || n != 0 {
			t.Errorf("before any order, stage %s: %d observations (exported %v), want 0", s, n, ok)
		}
	}

	first := o.placed(t, ann)
	o.reserve(t, first.ID)
	o.pay(t, first.ID)
	o.waitStatus(t, ann, first.ID, "confirmed")
	// The same answers again, under new message ids, as a producer that
	// published twice would send them: they change nothing.
	o.publish(t, productevents.StockReserved{OrderID: first.ID, Lines: []productevents.ReservedLine{
		{ProductID: uuid.NewString(), Name: "Thing", UnitPrice: "10.00", Quantity: 1}}, ExpiresAt: time.Now().Add(time.Minute)})
	o.publish(t, paymentevents.PaymentSucceeded{OrderID: first.ID, PaymentID: uuid.NewString(), Amount: "10.00", CapturedAt: time.Now().UTC()})
	// A second order, answered after them on the same handlers: once it is
	// confirmed, the handlers have had the repeated answers.
	second := o.placed(t, ann)
	o.reserve(t, second.ID)
	o.pay(t, second.ID)
	o.waitStatus(t, ann, second.ID, "confirmed")

	got := stageCounts(t, o)
	for _, s := range stages {
		if got[s] != 2 {
			t.Errorf("stage %s observed %d times for two confirmed orders, want 2 (all: %v)", s, got[s], got)
		}
	}
}
