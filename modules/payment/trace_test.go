package payment_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// TestTrace_AChargeOverTheBusIsOneTrace: payment.requested published
// inside a span (the order's) is charged in that trace: the charge's
// handler under the request's publish span, the worker's job under the
// handler, the provider calls under the job, and payment.succeeded
// published from the job, its message carrying the same trace on. The
// bus's own spans and its trace context in metadata come from the bus;
// without them (the metadata carries no traceparent) the test skips.
func TestTrace_AChargeOverTheBusIsOneTrace(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, _ := shop.Customer(t)

	ctx, root := otel.Tracer("test").Start(context.Background(), "POST /api/v1/orders")
	order := uuid.NewString()
	publishChargeIn(ctx, t, shop, order, userID)
	root.End()
	id := root.SpanContext().TraceID()

	succeeded := waitOutcome(t, db, events.PaymentSucceededV1, order)
	if requested := messages(t, db, orderevents.PaymentRequestedV1, order); len(requested) == 0 || requested[0].Metadata[telemetry.KeyTraceparent] == "" {
		t.Skip("the bus carries no trace context in message metadata on this branch: the bus's spans are another change's")
	}
	if got := telemetry.TraceIDOf(succeeded[0].Metadata[telemetry.KeyTraceparent]); got != id.String() {
		t.Fatalf("payment.succeeded carries trace %q, want the order's %s", got, id)
	}

	var spans []sdktrace.ReadOnlySpan
	testkit.Eventually(t, "the charge's spans in the order's trace", func() bool {
		spans = rec.Trace(id)
		return len(telemetrytest.Named(spans, "handle payment.charge")) > 0 &&
			len(telemetrytest.Named(spans, "payment.work charge")) > 0 &&
			len(telemetrytest.Named(spans, "payment.provider capture")) > 0 &&
			len(publishSpans(spans)) > 0
	})
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID().String()] = s
	}
	parentName := func(s sdktrace.ReadOnlySpan) string {
		if p, ok := byID[s.Parent().SpanID().String()]; ok {
			return p.Name()
		}
		return "(none)"
	}
	work := telemetrytest.Named(spans, "payment.work charge")[0]
	for s, want := range map[sdktrace.ReadOnlySpan]string{
		work: "handle payment.charge",
		telemetrytest.Named(spans, "payment.provider authorize")[0]: "payment.work charge",
		telemetrytest.Named(spans, "payment.provider capture")[0]:   "payment.work charge",
		publishSpans(spans)[0]: "payment.work charge",
	} {
		if got := parentName(s); got != want {
			t.Errorf("%s is a child of %s, want %s; trace:\n%s", s.Name(), got, want, telemetrytest.Tree(spans))
		}
	}
}

// publishSpans returns the publish spans of payment.succeeded ("publish
// payment.succeeded", with or without the version).
func publishSpans(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if strings.HasPrefix(s.Name(), "publish payment.succeeded") {
			out = append(out, s)
		}
	}
	return out
}
