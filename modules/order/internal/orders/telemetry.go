package orders

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry"
)

// TraceIDPlaceholder is what a trace URL template holds where the trace id goes.
const TraceIDPlaceholder = "{trace_id}"

// CheckTraceURLTemplate refuses a trace URL template (MODSHOP_TRACE_URL_TEMPLATE)
// that would not make a link to a tracing UI: it must be an absolute http(s)
// URL holding {trace_id}. "" (no links) is fine.
func CheckTraceURLTemplate(tmpl string) error {
	if tmpl == "" {
		return nil
	}
	if !strings.Contains(tmpl, TraceIDPlaceholder) {
		return errors.New("must contain {trace_id}, where the trace id goes (for example http://localhost:16686/trace/{trace_id})")
	}
	u, err := url.Parse(strings.ReplaceAll(tmpl, TraceIDPlaceholder, "4bf92f3577b34da6a3ce929d0e0e4736"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be an absolute http:// or https:// URL (for example http://localhost:16686/trace/{trace_id})")
	}
	return nil
}

// traceURL is tmpl with the trace id in it; nil without a template or a
// trace id.
func traceURL(tmpl, traceID string) *string {
	if tmpl == "" || traceID == "" {
		return nil
	}
	u := strings.ReplaceAll(tmpl, TraceIDPlaceholder, url.PathEscape(traceID))
	return &u
}

// tracer makes the order module's own spans (the sweeps').
var tracer = telemetry.Tracer("order")

// The saga's stages, as modshop_order_saga_stage_seconds labels them.
const (
	stagePlacedToReserved           = "placed_to_reserved"
	stageReservedToPaymentRequested = "reserved_to_payment_requested"
	stagePaymentRequestedToPaid     = "payment_requested_to_paid"
	stagePaidToConfirmed            = "paid_to_confirmed"
	stagePlacedToConfirmed          = "placed_to_confirmed"
)

// sagaMetrics times the saga's stages.
type sagaMetrics struct {
	stage *prometheus.HistogramVec
}

// newSagaMetrics makes the stage histogram; register puts it on a registry.
func newSagaMetrics() *sagaMetrics {
	m := &sagaMetrics{stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "modshop_order_saga_stage_seconds",
		Help: "How long orders take from one moment of the saga to the next, observed once per order when the later moment commits: " +
			"placed_to_reserved (placed → the product module reserved the stock), reserved_to_payment_requested (→ the order module asked for the payment), " +
			"payment_requested_to_paid (→ the payment module took it), paid_to_confirmed (→ the order module confirmed), placed_to_confirmed (the whole).",
		// 1 ms to about 65 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 17),
	}, []string{"stage"})}
	for _, s := range []string{stagePlacedToReserved, stageReservedToPaymentRequested, stagePaymentRequestedToPaid, stagePaidToConfirmed, stagePlacedToConfirmed} {
		m.stage.WithLabelValues(s)
	}
	return m
}

// RegisterMetrics registers the service's metrics
// (modshop_order_saga_stage_seconds) on reg; where another instance of the
// module registered them first, this one observes into those.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) {
	if reg == nil {
		return
	}
	if err := reg.Register(s.metrics.stage); err != nil {
		var already prometheus.AlreadyRegisteredError
		if !errors.As(err, &already) {
			panic(fmt.Sprintf("order: register the saga metrics: %v", err))
		}
		s.metrics.stage = already.ExistingCollector.(*prometheus.HistogramVec)
	}
}

// stageTime is one stage's length, to observe.
type stageTime struct {
	stage    string
	from, to time.Time
}

// observeAfterCommit observes the stages once tx commits (never if it
// rolls back, nor when the bus rolls back the savepoint of a handler that
// failed in a batch). A transaction that cannot run code after its commit
// gets them observed now.
func (m *sagaMetrics) observeAfterCommit(tx *gorm.DB, stages []stageTime) {
	if len(stages) == 0 {
		return
	}
	observe := func() {
		for _, s := range stages {
			d := s.to.Sub(s.from)
			if d < 0 { // clocks of two processes a little apart
				d = 0
			}
			m.stage.WithLabelValues(s.stage).Observe(d.Seconds())
		}
	}
	if ac, ok := tx.Statement.ConnPool.(db.AfterCommitter); ok {
		ac.AfterCommit(observe)
		return
	}
	observe()
}

// sagaStages are the stages that a step of an order from one state to
// another ends: at is the step's time (written to the row), placed the
// order's placement, paymentRequested when it asked for its payment (nil:
// not known), and event when the message the step handles was published
// (zero: not handling one).
func sagaStages(from, to State, placed time.Time, paymentRequested *time.Time, event, at time.Time) []stageTime {
	if event.IsZero() {
		event = at
	}
	switch {
	case from == State{Pending, NoPayment} && to == State{AwaitingPayment, ChargeRequested}:
		// The stock was reserved when the product module published
		// stock.reserved; the payment is asked for in this step's commit.
		return []stageTime{{stagePlacedToReserved, placed, event}, {stageReservedToPaymentRequested, event, at}}
	case from == State{AwaitingPayment, ChargeRequested} && to == State{Confirmed, Captured}:
		// Paid when the payment module published payment.succeeded.
		out := []stageTime{{stagePaidToConfirmed, event, at}, {stagePlacedToConfirmed, placed, at}}
		if paymentRequested != nil {
			out = append(out, stageTime{stagePaymentRequestedToPaid, *paymentRequested, event})
		}
		return out
	}
	return nil
}

// sweepSpan starts the root span of a sweep's work on one order, linked to
// the trace the order was placed in (traceparent; none when it was placed
// untraced).
func sweepSpan(ctx context.Context, what, orderID string, traceparent *string) (context.Context, trace.Span) {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String("modshop.order.id", orderID))}
	if traceparent != nil {
		if l, ok := telemetry.LinkTo(*traceparent); ok {
			opts = append(opts, trace.WithLinks(l))
		}
	}
	return tracer.Start(ctx, "order.sweep "+what, opts...)
}

// endSpan ends span, marked failed by err.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
