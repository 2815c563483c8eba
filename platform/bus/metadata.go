package bus

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/modshop/modshop/platform/telemetry"
)

// Metadata keys every message carries.
const (
	KeyEvent          = "event"
	KeyCorrelationID  = "correlation_id"
	KeyCausationID    = "causation_id"
	KeyOccurredAt     = "occurred_at"
	KeyIdempotencyKey = "idempotency_key"
)

// Metadata is what a handler knows about the message besides its payload.
type Metadata struct {
	MessageID      string
	Event          string
	CorrelationID  string
	CausationID    string
	OccurredAt     time.Time
	IdempotencyKey string
	// traceparent is the W3C trace context the message carries (its
	// publish span: tracing.go), for a replay's span.
	traceparent, tracestate string
}

func metadataOf(msg *message.Message) Metadata {
	at, _ := time.Parse(time.RFC3339Nano, msg.Metadata.Get(KeyOccurredAt))
	return Metadata{
		MessageID:      msg.UUID,
		Event:          msg.Metadata.Get(KeyEvent),
		CorrelationID:  msg.Metadata.Get(KeyCorrelationID),
		CausationID:    msg.Metadata.Get(KeyCausationID),
		OccurredAt:     at,
		IdempotencyKey: msg.Metadata.Get(KeyIdempotencyKey),
		traceparent:    msg.Metadata.Get(telemetry.KeyTraceparent),
		tracestate:     msg.Metadata.Get(telemetry.KeyTracestate),
	}
}

type (
	handlingKey    struct{}
	correlationKey struct{}
	idempotencyKey struct{}
)

// WithCorrelationID makes events published with ctx carry id as their
// correlation id (for example the order id, or the HTTP request id).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// WithIdempotencyKey makes events published with ctx carry key.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey{}, key)
}

// withHandling marks ctx as handling md: events published from the handler
// inherit its correlation id and idempotency key, and name it as their cause.
func withHandling(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, handlingKey{}, md)
}

// MessageMetadata returns the metadata of the message being handled, if
// ctx belongs to a handler.
func MessageMetadata(ctx context.Context) (Metadata, bool) {
	md, ok := ctx.Value(handlingKey{}).(Metadata)
	return md, ok
}

// outgoing builds the metadata of a message published with ctx.
func outgoing(ctx context.Context, name string, now time.Time) message.Metadata {
	md := message.Metadata{KeyEvent: name, KeyOccurredAt: now.UTC().Format(time.RFC3339Nano)}
	if cur, ok := MessageMetadata(ctx); ok {
		md[KeyCorrelationID] = cur.CorrelationID
		md[KeyCausationID] = cur.MessageID
		if cur.IdempotencyKey != "" {
			md[KeyIdempotencyKey] = cur.IdempotencyKey
		}
	}
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		md[KeyCorrelationID] = id
	}
	if key, ok := ctx.Value(idempotencyKey{}).(string); ok && key != "" {
		md[KeyIdempotencyKey] = key
	}
	return md
}
