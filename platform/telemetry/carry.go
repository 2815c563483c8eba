package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// The keys of the W3C trace context in a message's metadata and in a
// stored carrier: the same as the HTTP headers, lower case.
const (
	KeyTraceparent = "traceparent"
	KeyTracestate  = "tracestate"
)

// Inject writes ctx's trace context into md (a message's metadata): the
// traceparent and, where there is one, the tracestate and baggage. A
// context without a valid span writes nothing.
func Inject(ctx context.Context, md map[string]string) {
	Propagator.Inject(ctx, propagation.MapCarrier(md))
}

// Extract returns ctx with the remote span context that md carries (as
// Inject wrote it), to parent the spans of the work md asks for.
func Extract(ctx context.Context, md map[string]string) context.Context {
	return Propagator.Extract(ctx, propagation.MapCarrier(md))
}

// Traceparent is ctx's span as a W3C traceparent header value, to store
// with a row that other work picks up later (the payment worker's claims,
// an order's deadlines); "" when ctx has no valid span.
func Traceparent(ctx context.Context) string {
	md := map[string]string{}
	propagation.TraceContext{}.Inject(ctx, propagation.MapCarrier(md))
	return md[KeyTraceparent]
}

// FromTraceparent returns ctx with the remote span that traceparent names
// (as Traceparent wrote it) as its parent; ctx unchanged when it is empty
// or malformed.
func FromTraceparent(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{KeyTraceparent: traceparent})
}

// LinkTo is a link to the span traceparent names, for work that starts a
// trace of its own on something another trace made (a sweep that cancels
// an order past its deadline links to the order's trace). ok is false when
// traceparent names no valid span.
func LinkTo(traceparent string) (link trace.Link, ok bool) {
	sc := trace.SpanContextFromContext(FromTraceparent(context.Background(), traceparent))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// TraceID is ctx's trace id in hex; "" when ctx has no valid span context.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// TraceIDOf is the trace id of a stored traceparent; "" when it is empty
// or malformed.
func TraceIDOf(traceparent string) string {
	return TraceID(FromTraceparent(context.Background(), traceparent))
}
