package provider

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/telemetry"
)

// Span attributes of a provider call.
const (
	// AttrOutcome is what the provider answered: OutcomeOK or one of the
	// Outcome* failures.
	AttrOutcome = "modshop.provider.outcome"
	// AttrIdempotencyKey is the call's idempotency key (the payment's or
	// the refund's id): the same on every retry of one operation.
	AttrIdempotencyKey = "modshop.provider.idempotency_key"
)

// Outcomes of a provider call, as AttrOutcome gives them.
const (
	OutcomeOK            = "ok"
	OutcomeDeclined      = "declined"
	OutcomeInvalidMethod = "invalid_method"
	OutcomeTooLarge      = "amount_too_large"
	OutcomeRejected      = "rejected"
	OutcomeTimeout       = "timeout"     // the call's deadline passed: it may have happened
	OutcomeCancelled     = "cancelled"   // the worker is stopping: it may have happened
	OutcomeUnavailable   = "unavailable" // no answer: it may have happened
)

// Outcome names what err (a provider call's error, nil for success)
// says about the call.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeOK
	case errors.Is(err, ErrDeclined):
		return OutcomeDeclined
	case errors.Is(err, ErrInvalidMethod):
		return OutcomeInvalidMethod
	case errors.Is(err, ErrAmountTooLarge):
		return OutcomeTooLarge
	case errors.Is(err, ErrRejected):
		return OutcomeRejected
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCancelled
	default:
		return OutcomeUnavailable
	}
}

// Traced wraps p so that each call is a client span "payment.provider
// <op>" (authorize, capture, refund), a child of the caller's span, with
// the call's outcome as AttrOutcome and status Error when the call
// failed (a definite refusal too: the call did not do what was asked).
// A provider reached over HTTP also wraps its client's transport with
// telemetry.Transport, so that its requests are spans under these.
func Traced(p Provider) Provider {
	if t, ok := p.(traced); ok {
		return t
	}
	return traced{p}
}

type traced struct{ p Provider }

var tracer = telemetry.Tracer("payment")

func call(ctx context.Context, op, key string, fn func(context.Context) (string, error)) (string, error) {
	ctx, span := tracer.Start(ctx, "payment.provider "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String(AttrIdempotencyKey, key)))
	defer span.End()
	ref, err := fn(ctx)
	span.SetAttributes(attribute.String(AttrOutcome, Outcome(err)))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return ref, err
}

func (t traced) Authorize(ctx context.Context, r AuthorizeRequest) (string, error) {
	return call(ctx, "authorize", r.IdempotencyKey, func(ctx context.Context) (string, error) { return t.p.Authorize(ctx, r) })
}

func (t traced) Capture(ctx context.Context, r CaptureRequest) (string, error) {
	return call(ctx, "capture", r.IdempotencyKey, func(ctx context.Context) (string, error) { return t.p.Capture(ctx, r) })
}

func (t traced) Refund(ctx context.Context, r RefundRequest) (string, error) {
	return call(ctx, "refund", r.IdempotencyKey, func(ctx context.Context) (string, error) { return t.p.Refund(ctx, r) })
}
