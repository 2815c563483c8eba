package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/payment/internal/ledger"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
)

// inSpan runs fn inside a new root span, standing in for the bus
// handler that records work for the worker, and returns that span.
func inSpan(name string, fn func(ctx context.Context)) trace.SpanContext {
	ctx, span := otel.Tracer("test").Start(context.Background(), name)
	defer span.End()
	fn(ctx)
	return span.SpanContext()
}

// waitTrace waits until the spans ended in trace id satisfy done, and
// returns them.
func waitTrace(t *testing.T, rec *telemetrytest.Recorder, id trace.TraceID, what string, done func([]sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		spans := rec.Trace(id)
		if done(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: no %s within 15s; it holds:\n%s", id, what, telemetrytest.Tree(spans))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// traceConfig is fastConfig with a provider timeout no loaded test
// machine reaches: these tests count the jobs and calls of an attempt.
func traceConfig() ledger.Config {
	cfg := fastConfig()
	cfg.ProviderTimeout = 10 * time.Second
	cfg.MaxAttempts = 5
	return cfg
}

func hasNamed(counts map[string]int) func([]sdktrace.ReadOnlySpan) bool {
	return func(spans []sdktrace.ReadOnlySpan) bool {
		for name, n := range counts {
			if len(telemetrytest.Named(spans, name)) < n {
				return false
			}
		}
		return true
	}
}

// childrenOf returns the spans of spans whose parent is parent.
func childrenOf(spans []sdktrace.ReadOnlySpan, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Parent().SpanID() == parent.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(t *testing.T, s sdktrace.ReadOnlySpan, key, want string, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	if got, _ := telemetrytest.Attr(s, key); got != want {
		t.Errorf("span %s: %s = %q, want %q; trace:\n%s", s.Name(), key, got, want, telemetrytest.Tree(spans))
	}
}

// A charge recorded inside a handler's span is carried out, however
// late and by whichever worker claims it, in a span "payment.work charge"
// that is a child of that handler's span; the provider calls are client
// spans under it, and payment.succeeded is published inside it, so the
// bus carries the order's trace on.
func TestTrace_TheWorkerContinuesTheTraceOfTheChargesHandler(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newLedger(t, traceConfig(), time.Millisecond)
	order := uuid.NewString()
	handler := inSpan("handle payment.charge", func(ctx context.Context) {
		req := orderevents.PaymentRequested{OrderID: order, UserID: uuid.NewString(), Amount: "12.50", PaymentMethod: "pm_card_visa", RequestedAt: time.Now()}
		if err := w.db.Transaction(func(tx *gorm.DB) error { return w.svc.RecordCharge(ctx, tx, req) }); err != nil {
			t.Fatal(err)
		}
	})
	w.run(t)
	if p := w.waitSettled(t, order); p.Status != "captured" {
		t.Fatalf("payment %+v, want captured", p)
	}
	spans := waitTrace(t, rec, handler.TraceID(), "charge work with its provider calls", hasNamed(map[string]int{
		"payment.work charge": 1, "payment.provider authorize": 1, "payment.provider capture": 1}))

	work := telemetrytest.Named(spans, "payment.work charge")
	if len(work) != 1 || work[0].Parent().SpanID() != handler.SpanID() {
		t.Fatalf("want one payment.work charge, a child of the handler's span %s; trace:\n%s", handler.SpanID(), telemetrytest.Tree(spans))
	}
	job := work[0]
	if job.SpanKind() != trace.SpanKindConsumer || job.Status().Code == codes.Error {
		t.Errorf("payment.work charge: kind %s, status %v; want a consumer span without error", job.SpanKind(), job.Status())
	}
	attr(t, job, "modshop.order.id", order, spans)
	attr(t, job, "modshop.attempt", "1", spans)
	attr(t, job, "modshop.payment.work_outcome", "captured", spans)
	calls := childrenOf(spans, job.SpanContext())
	for _, name := range []string{"payment.provider authorize", "payment.provider capture"} {
		got := telemetrytest.Named(calls, name)
		if len(got) != 1 {
			t.Fatalf("want one %s under payment.work charge; trace:\n%s", name, telemetrytest.Tree(spans))
		}
		if got[0].SpanKind() != trace.SpanKindClient || got[0].Status().Code == codes.Error {
			t.Errorf("%s: kind %s, status %v; want a client span without error", name, got[0].SpanKind(), got[0].Status())
		}
		attr(t, got[0], "modshop.provider.outcome", "ok", spans)
	}

	// The outcome is published inside the job's span: the bus makes its
	// publish span there and carries that trace on to the order.
	in, ok := w.events.publishedIn(events.PaymentSucceededV1)
	if !ok {
		t.Fatal("no payment.succeeded published")
	}
	if in.TraceID() != handler.TraceID() || in.SpanID() != job.SpanContext().SpanID() {
		t.Fatalf("payment.succeeded published in span %s/%s, want the job's %s/%s",
			in.TraceID(), in.SpanID(), handler.TraceID(), job.SpanContext().SpanID())
	}
	if pub := telemetrytest.Named(spans, "publish payment.succeeded"); len(pub) > 0 && pub[0].Parent().SpanID() != job.SpanContext().SpanID() {
		t.Errorf("publish payment.succeeded is not a child of the job; trace:\n%s", telemetrytest.Tree(spans))
	}
}

// A provider call that fails is a span with status Error and its outcome;
// the attempt's job is an Error (retry) too, and the next attempt is
// another job span under the same handler span. A definite refusal
// (declined) is an Error on the provider call but not on the job: the
// job did its work, recording the failure.
func TestTrace_AFailingProviderCallIsAnError(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newLedger(t, traceConfig(), time.Millisecond)
	w.provider.authorizeFailures = 1
	record := func(order, method string) trace.SpanContext {
		return inSpan("handle payment.charge", func(ctx context.Context) {
			req := orderevents.PaymentRequested{OrderID: order, UserID: uuid.NewString(), Amount: "3.00", PaymentMethod: method, RequestedAt: time.Now()}
			if err := w.db.Transaction(func(tx *gorm.DB) error { return w.svc.RecordCharge(ctx, tx, req) }); err != nil {
				t.Fatal(err)
			}
		})
	}
	retried := uuid.NewString()
	handler := record(retried, "pm_card_visa")
	w.run(t)
	if p := w.waitSettled(t, retried); p.Status != "captured" || p.Attempts != 2 {
		t.Fatalf("payment %+v, want captured at the second attempt", p)
	}
	spans := waitTrace(t, rec, handler.TraceID(), "two charge attempts", hasNamed(map[string]int{
		"payment.work charge": 2, "payment.provider authorize": 2, "payment.provider capture": 1}))
	work := telemetrytest.Named(spans, "payment.work charge")
	for i, job := range work {
		if job.Parent().SpanID() != handler.SpanID() {
			t.Errorf("attempt %d is not a child of the handler's span; trace:\n%s", i+1, telemetrytest.Tree(spans))
		}
	}
	first, second := work[0], work[1]
	if a, _ := telemetrytest.Attr(first, "modshop.attempt"); a != "1" {
		first, second = second, first
	}
	if first.Status().Code != codes.Error {
		t.Errorf("the failed attempt's job has status %v, want Error", first.Status())
	}
	attr(t, first, "modshop.payment.work_outcome", "retry", spans)
	attr(t, second, "modshop.payment.work_outcome", "captured", spans)
	failed := telemetrytest.Named(childrenOf(spans, first.SpanContext()), "payment.provider authorize")
	if len(failed) != 1 || failed[0].Status().Code != codes.Error {
		t.Fatalf("want the first attempt's authorize with status Error; trace:\n%s", telemetrytest.Tree(spans))
	}
	attr(t, failed[0], "modshop.provider.outcome", "unavailable", spans)
	if len(failed[0].Events()) == 0 || failed[0].Events()[0].Name != "exception" {
		t.Errorf("the failed call records no error event: %v", failed[0].Events())
	}

	declined := uuid.NewString()
	handler = record(declined, "pm_card_chargeDeclined")
	if p := w.waitSettled(t, declined); p.Status != "failed" {
		t.Fatalf("payment %+v, want failed", p)
	}
	spans = waitTrace(t, rec, handler.TraceID(), "the declined charge's job", hasNamed(map[string]int{"payment.work charge": 1}))
	job := telemetrytest.Named(spans, "payment.work charge")[0]
	call := telemetrytest.Named(childrenOf(spans, job.SpanContext()), "payment.provider authorize")
	if len(call) != 1 || call[0].Status().Code != codes.Error {
		t.Fatalf("want the declined authorize with status Error; trace:\n%s", telemetrytest.Tree(spans))
	}
	attr(t, call[0], "modshop.provider.outcome", "declined", spans)
	attr(t, job, "modshop.payment.work_outcome", "failed", spans)
	if job.Status().Code == codes.Error {
		t.Errorf("a declined charge's job has status Error: the job recorded the provider's answer")
	}
}

// A refund recorded inside a handler's span is carried out in a span
// "payment.work refund" under it. A charge recorded outside any trace
// (tracing off where it was recorded, rows from before) still runs, as
// a trace of its own.
func TestTrace_RefundWorkContinuesItsHandlersTraceAndUntracedRowsStartTheirOwn(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newLedger(t, traceConfig(), time.Millisecond)
	w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "7.00", "pm_card_visa") // no span
	p := w.waitSettled(t, order)
	succeeded, ok := w.events.publishedIn(events.PaymentSucceededV1)
	if !ok || !succeeded.IsValid() {
		t.Fatalf("payment.succeeded published in %v, want a span of its own", succeeded)
	}
	spans := waitTrace(t, rec, succeeded.TraceID(), "the untraced charge's job", hasNamed(map[string]int{"payment.work charge": 1}))
	if job := telemetrytest.Named(spans, "payment.work charge")[0]; job.Parent().IsValid() {
		t.Errorf("a charge recorded outside any trace: its job has parent %s, want a root span", job.Parent().SpanID())
	}

	handler := inSpan("handle payment.refund", func(ctx context.Context) {
		err := w.db.Transaction(func(tx *gorm.DB) error {
			return w.svc.RecordRefund(ctx, tx, orderevents.RefundRequested{OrderID: order, Reason: "cancelled"})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	spans = waitTrace(t, rec, handler.TraceID(), "refund work with its provider call", hasNamed(map[string]int{
		"payment.work refund": 1, "payment.provider refund": 1}))
	job := telemetrytest.Named(spans, "payment.work refund")[0]
	if job.Parent().SpanID() != handler.SpanID() {
		t.Fatalf("payment.work refund is not a child of the handler's span; trace:\n%s", telemetrytest.Tree(spans))
	}
	attr(t, job, "modshop.payment.id", p.ID, spans)
	attr(t, job, "modshop.payment.work_outcome", "refunded", spans)
	if call := telemetrytest.Named(childrenOf(spans, job.SpanContext()), "payment.provider refund"); len(call) != 1 {
		t.Fatalf("want one payment.provider refund under the job; trace:\n%s", telemetrytest.Tree(spans))
	}
	if in, ok := w.events.publishedIn(events.PaymentRefundedV1); !ok || in.SpanID() != job.SpanContext().SpanID() {
		t.Fatalf("payment.refunded published in span %v (%v), want the job's %s", in.SpanID(), ok, job.SpanContext().SpanID())
	}
}
