package bus

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/telemetry"
)

// Tracing (ADR 0027). Each event Publish writes is a producer span
// "publish <event>", child of the publisher's span, whose W3C trace
// context goes into the message's metadata (traceparent, tracestate): it
// travels with the message through the bus tables, and through the outbox,
// the forwarder and RabbitMQ with the rabbitmq transport. Each attempt at
// handling a message is a consumer span "handle <handler>", child of the
// publish span of that message (from its metadata, not from the batch it
// was read in: the messages of one batch belong to as many traces), and
// the handler's context holds it, so the handler's statements and the
// events it publishes are its children. The subscriber's own work (its
// polls, offsets, savepoints) runs outside any span.
//
// With tracing off (the global provider a no-op) a message costs the no-op
// span and, when its metadata carries a trace context, the context that
// passes it on to what the handler publishes; no attribute is built.

// Span attribute keys and the outcomes of a handling attempt.
const (
	attrMessagingSystem = "messaging.system"
	attrDestination     = "messaging.destination.name"
	attrMessageID       = "messaging.message.id"
	attrConsumerGroup   = "messaging.consumer.group.name"
	attrAttempt         = "modshop.attempt"
	attrOutcome         = "modshop.outcome"
	attrFailure         = "modshop.failure"
	attrReplay          = "modshop.replay"

	messagingSystem = "modshop"

	OutcomeApplied        = "applied"
	OutcomeDuplicate      = "duplicate"
	OutcomeRetryTransient = "retry_transient"
	OutcomeRetryPermanent = "retry_permanent"
	OutcomeDeadLetter     = "dead_letter"

	failureTransient = "transient"
	failurePermanent = "permanent"
)

var (
	producerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumerKind = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
)

// publishSpanNames caches "publish <event>" per event name, so that a
// publish builds no string.
var publishSpanNames sync.Map // event name -> span name

func publishSpanName(event string) string {
	if n, ok := publishSpanNames.Load(event); ok {
		return n.(string)
	}
	n, _ := publishSpanNames.LoadOrStore(event, "publish "+event)
	return n.(string)
}

// startPublish starts the span of publishing msg, event name, with ctx's
// span as its parent, and writes its trace context into msg's metadata.
// The caller ends the span.
func (b *Bus) startPublish(ctx context.Context, name string, msg *message.Message) trace.Span {
	ctx, span := b.tracer.Start(ctx, publishSpanName(name), producerKind...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(attrMessagingSystem, messagingSystem),
			attribute.String(attrDestination, name),
			attribute.String(attrMessageID, msg.UUID),
		)
	}
	// Also when this process does not record: the context it was given
	// (an HTTP header, the message a handler handles) goes on.
	if trace.SpanContextFromContext(ctx).IsValid() {
		telemetry.Inject(ctx, msg.Metadata)
	}
	return span
}

// startHandle starts the span of one attempt of h at msg: a child of the
// span that published msg, when its metadata names one.
func (b *Bus) startHandle(ctx context.Context, h *handler, msg *message.Message, attempt int) (context.Context, trace.Span) {
	ctx = telemetry.Extract(ctx, msg.Metadata)
	ctx, span := b.tracer.Start(ctx, h.spanName, consumerKind...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(attrMessagingSystem, messagingSystem),
			attribute.String(attrConsumerGroup, h.name),
			attribute.String(attrMessageID, msg.UUID),
			attribute.Int(attrAttempt, attempt),
		)
	}
	return ctx, span
}

// startReplay starts the span of replaying the message md describes: a
// child of its publish span, linked to ctx's span (the staff member's
// request), with modshop.replay set.
func (b *Bus) startReplay(ctx context.Context, h *handler, md Metadata) (context.Context, trace.Span) {
	carrier := map[string]string{}
	if md.traceparent != "" {
		carrier[telemetry.KeyTraceparent] = md.traceparent
	}
	if md.tracestate != "" {
		carrier[telemetry.KeyTracestate] = md.tracestate
	}
	opts := consumerKind
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		opts = append([]trace.SpanStartOption{trace.WithLinks(trace.Link{SpanContext: sc})}, consumerKind...)
	}
	// Only the message's trace: not the caller's span, which is linked.
	parent := telemetry.Extract(trace.ContextWithSpanContext(ctx, trace.SpanContext{}), carrier)
	ctx, span := b.tracer.Start(parent, h.spanName, opts...)
	if span.IsRecording() {
		span.SetAttributes(
			attribute.String(attrMessagingSystem, messagingSystem),
			attribute.String(attrConsumerGroup, h.name),
			attribute.String(attrMessageID, md.MessageID),
			attribute.Int(attrAttempt, 1),
			attribute.Bool(attrReplay, true),
		)
	}
	return ctx, span
}

// endHandle ends an attempt's span with its outcome; err is the attempt's
// failure (nil when it applied the message or found it applied).
func endHandle(span trace.Span, outcome string, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String(attrOutcome, outcome))
		if err != nil {
			failure := failurePermanent
			if outcome == OutcomeRetryTransient {
				failure = failureTransient
			}
			span.SetAttributes(attribute.String(attrFailure, failure))
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}

// tries counts the attempts at one message across the batches that read
// it again: a transient failure in a batch ends the batch, and the message
// comes back in a later one, where its span goes on counting (the
// modshop.attempt of its spans: 1, 2, ...). A group handles its messages
// one at a time, in order, so it remembers one message: the last one that
// failed transiently.
type tries struct {
	mu        sync.Mutex
	messageID string
	n         int
}

// first returns the number of msg's first attempt in this delivery.
func (t *tries) first(messageID string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n > 0 && t.messageID == messageID {
		n := t.n + 1
		t.n = 0 // it fails again (failedTransiently) or is done
		return n
	}
	return 1
}

// failedTransiently records that attempt n at messageID failed transiently
// and ended its batch.
func (t *tries) failedTransiently(messageID string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.messageID, t.n = messageID, n
}
