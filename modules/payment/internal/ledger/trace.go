package ledger

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/modules/payment/internal/provider"
	"github.com/modshop/modshop/platform/telemetry"
)

// The worker's spans. Each job for a claimed row (one attempt at a
// payment or a refund) is a span "payment.work <op>" (charge, refund)
// whose parent is the trace context stored with the row: that of the
// handler that recorded it, so the job, its provider calls ("payment.provider
// <op>", provider.Traced), its statements and the outcome event it
// publishes continue the order's trace, whichever replica claims the row
// and however late. A row recorded outside any trace starts a new one.

var tracer = telemetry.Tracer("payment")

// Span attributes of a job.
const (
	attrPaymentID = "modshop.payment.id"
	attrRefundID  = "modshop.refund.id"
	attrOrderID   = "modshop.order.id"
	attrAttempt   = "modshop.attempt"
	// attrWorkOutcome is what the job did with its row (work* below).
	attrWorkOutcome = "modshop.payment.work_outcome"
)

// What a job did with its row.
const (
	workCaptured   = "captured"    // charged; payment.succeeded published
	workRefunded   = "refunded"    // refunded; payment.refunded published
	workFailed     = "failed"      // a definite failure recorded (payment.failed for a charge)
	workRetry      = "retry"       // the provider did not answer: due again after the backoff
	workHandedBack = "handed_back" // the worker is stopping: the row is given back
)

// startWork starts the span of a job for a claimed row, op being charge
// or refund, as a child of the row's stored trace context.
func (s *Service) startWork(ctx context.Context, op, traceparent string, attempt int, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append(attrs, attribute.Int(attrAttempt, attempt))
	return tracer.Start(telemetry.FromTraceparent(ctx, traceparent), "payment.work "+op,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// unanswered reports whether err is a provider call that got no answer.
func unanswered(err error) bool {
	switch provider.Outcome(err) {
	case provider.OutcomeTimeout, provider.OutcomeUnavailable, provider.OutcomeCancelled:
		return true
	}
	return false
}

// endWork records a job's outcome on its span: status Error when the
// provider did not answer (the job is retried) or the outcome could not
// be recorded. A definite refusal (declined, say) is the provider's answer,
// not the job's failure: its provider span carries the error. A charge
// given up as provider_unavailable is an Error too.
func endWork(span trace.Span, outcome string, callErr, settleErr error) {
	span.SetAttributes(attribute.String(attrWorkOutcome, outcome))
	switch {
	case settleErr != nil && !errors.Is(settleErr, errClaimLost):
		span.RecordError(settleErr)
		span.SetStatus(codes.Error, "recording the outcome failed: "+settleErr.Error())
	case outcome == workRetry || (outcome == workFailed && unanswered(callErr)):
		span.SetStatus(codes.Error, "the provider did not answer: "+callErr.Error())
	case settleErr != nil: // errClaimLost: another worker settles the row
		span.SetAttributes(attribute.Bool("modshop.payment.claim_lost", true))
	}
}
