package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
)

// traced starts a test's own root span (the HTTP request, say): what is
// published with its context belongs to its trace.
func traced(t *testing.T) (context.Context, trace.Span, *telemetrytest.Recorder) {
	t.Helper()
	rec := telemetrytest.Install()
	ctx, span := otel.Tracer("test").Start(context.Background(), "test "+t.Name())
	return ctx, span, rec
}

// waitSpans waits until the trace holds at least n spans named name, and
// returns the whole trace.
func (e *env) waitSpans(rec *telemetrytest.Recorder, id trace.TraceID, name string, n int) []sdktrace.ReadOnlySpan {
	e.t.Helper()
	var spans []sdktrace.ReadOnlySpan
	deadline := time.Now().Add(30 * time.Second)
	for {
		spans = rec.Trace(id)
		if len(telemetrytest.Named(spans, name)) >= n {
			return spans
		}
		if time.Now().After(deadline) {
			var elsewhere []string
			for _, s := range telemetrytest.Named(rec.Ended(), name) {
				id, _ := telemetrytest.Attr(s, "messaging.message.id")
				elsewhere = append(elsewhere, s.SpanContext().TraceID().String()+"/"+id)
			}
			e.t.Fatalf("timed out waiting for %d spans %q; the trace:\n%s(spans %q of any trace, by trace/message: %v)", n, name, telemetrytest.Tree(spans), name, elsewhere)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// attrs checks span's attributes.
func checkAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := telemetrytest.Attr(s, k); !ok || got != v {
			t.Errorf("span %s: %s = %q (set: %v), want %q", s.Name(), k, got, ok, v)
		}
	}
}

func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %s [%s] is not a child of %s [%s]; the trace:\n%s", child.Name(), child.SpanContext().SpanID(),
			parent.Name(), parent.SpanContext().SpanID(), telemetrytest.Tree(spans))
	}
}

const (
	publishHappened = "publish test.thing_happened.v1"
	publishFollowed = "publish test.thing_followed.v1"
)

// TestTracing_HandlerSpanIsAChildOfItsMessagesPublishSpan: an event
// published inside a span is a producer span under it, carrying its
// attributes; its handler's attempt is a consumer span under that, whose
// context the handler gets.
func TestTracing_HandlerSpanIsAChildOfItsMessagesPublishSpan(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{})
		var inHandler atomic.Value // trace.SpanContext
		Handle(b, "testmod.record", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			inHandler.Store(trace.SpanContextFromContext(ctx))
			return record("testmod.record")(ctx, tx, ev)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "one")
		root.End()
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.record", 1)

		pubs := telemetrytest.Named(spans, publishHappened)
		if len(pubs) != 1 {
			t.Fatalf("%d publish spans; the trace:\n%s", len(pubs), telemetrytest.Tree(spans))
		}
		pub, h := pubs[0], telemetrytest.Named(spans, "handle testmod.record")[0]
		childOf(t, pub, telemetrytest.Named(spans, "test "+t.Name())[0], spans)
		childOf(t, h, pub, spans)
		if pub.SpanKind() != trace.SpanKindProducer || h.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("kinds: publish %s, handle %s", pub.SpanKind(), h.SpanKind())
		}
		id, _ := telemetrytest.Attr(pub, "messaging.message.id")
		if id == "" {
			t.Fatal("the publish span names no message id")
		}
		checkAttrs(t, pub, map[string]string{"messaging.system": "modshop", "messaging.destination.name": "test.thing_happened.v1"})
		checkAttrs(t, h, map[string]string{"messaging.system": "modshop", "messaging.consumer.group.name": "testmod.record",
			"messaging.message.id": id, "modshop.attempt": "1", "modshop.outcome": "applied"})
		if _, failed := telemetrytest.Attr(h, "modshop.failure"); failed || h.Status().Code == codes.Error {
			t.Errorf("an applied message's span is marked failed: %v", h.Status())
		}
		if got, _ := inHandler.Load().(trace.SpanContext); got.SpanID() != h.SpanContext().SpanID() {
			t.Errorf("the handler's context holds span %s, want its handle span %s", got.SpanID(), h.SpanContext().SpanID())
		}
	})
}

// TestTracing_EachMessageOfABatchIsAChildOfItsOwnPublish: three messages
// of three traces, applied in one batch transaction: each one's handle
// span is a child of its own publish span, and the handler's context (its
// statements, what it publishes) is in that message's trace.
func TestTracing_EachMessageOfABatchIsAChildOfItsOwnPublish(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	e := newEnv(t)
	b := e.bus(Config{})
	var mu sync.Mutex
	batches := map[*batchTx]bool{}
	inHandler := map[string]trace.SpanContext{} // key -> the handler's span
	Handle(b, "testmod.record", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		mu.Lock()
		if bc, ok := tx.Statement.ConnPool.(batchConn); ok {
			batches[bc.t] = true
		}
		inHandler[ev.Key] = trace.SpanContextFromContext(ctx)
		mu.Unlock()
		return record("testmod.record")(ctx, tx, ev)
	})
	// Published before the subscriber starts: its first read takes all three.
	var roots []trace.Span
	for i := range 3 {
		ctx, root := otel.Tracer("test").Start(context.Background(), "order")
		e.publish(b, ctx, fmt.Sprintf("k%d", i))
		root.End()
		roots = append(roots, root)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, root := range roots {
		// The statements' own spans ("db ..."; platform/db) are not counted.
		spans := withoutStatements(e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.record", 1))
		pub, h := telemetrytest.Named(spans, publishHappened), telemetrytest.Named(spans, "handle testmod.record")
		if len(pub) != 1 || len(h) != 1 || len(spans) != 3 {
			t.Fatalf("trace %d: want the root, one publish and one handle span:\n%s", i, telemetrytest.Tree(spans))
		}
		childOf(t, pub[0], spans[0], spans)
		childOf(t, h[0], pub[0], spans)
		mu.Lock()
		got := inHandler[fmt.Sprintf("k%d", i)]
		mu.Unlock()
		if got.SpanID() != h[0].SpanContext().SpanID() {
			t.Errorf("message k%d: the handler's context holds span %s, want %s", i, got.SpanID(), h[0].SpanContext().SpanID())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 1 {
		t.Fatalf("the three messages ran in %d batch transactions, want 1", len(batches))
	}
}

// handleSpans returns the trace's spans of handler h, in the order they
// started, each checked to be a child of the one publish span.
func handleSpans(t *testing.T, spans []sdktrace.ReadOnlySpan, h string) []sdktrace.ReadOnlySpan {
	t.Helper()
	pubs := telemetrytest.Named(spans, publishHappened)
	if len(pubs) != 1 {
		t.Fatalf("%d publish spans:\n%s", len(pubs), telemetrytest.Tree(spans))
	}
	hs := telemetrytest.Named(spans, "handle "+h)
	for _, s := range hs {
		childOf(t, s, pubs[0], spans)
	}
	return hs
}

type wantAttempt struct {
	attempt, outcome, failure string // failure "": none, and status not Error
}

func checkAttempts(t *testing.T, hs []sdktrace.ReadOnlySpan, want []wantAttempt) {
	t.Helper()
	if len(hs) != len(want) {
		t.Fatalf("%d attempt spans, want %d", len(hs), len(want))
	}
	for i, w := range want {
		s := hs[i]
		checkAttrs(t, s, map[string]string{"modshop.attempt": w.attempt, "modshop.outcome": w.outcome})
		failure, _ := telemetrytest.Attr(s, "modshop.failure")
		if failure != w.failure || (s.Status().Code == codes.Error) != (w.failure != "") {
			t.Errorf("attempt %s: modshop.failure %q, status %v; want failure %q", w.attempt, failure, s.Status(), w.failure)
		}
	}
}

// TestTracing_EachAttemptIsASpan: a handler failing permanently twice and
// then succeeding shows three attempts, the first two failed.
func TestTracing_EachAttemptIsASpan(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{MaxAttempts: 5})
		var attempts atomic.Int32
		Handle(b, "testmod.flaky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if attempts.Add(1) <= 2 {
				return tx.Exec(`SELECT 1/0`).Error
			}
			return record("flaky")(ctx, tx, ev)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "flaky")
		root.End()
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.flaky", 3)
		checkAttempts(t, handleSpans(t, spans, "testmod.flaky"), []wantAttempt{
			{"1", "retry_permanent", "permanent"},
			{"2", "retry_permanent", "permanent"},
			{"3", "applied", ""},
		})
	})
}

// TestTracing_TransientFailureThenApplied: a transient failure's attempt
// says so, and the next attempt (in a batch: when the group reads again)
// goes on counting.
func TestTracing_TransientFailureThenApplied(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{TransientBackoff: 5 * time.Millisecond})
		var attempts atomic.Int32
		Handle(b, "testmod.blip", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if attempts.Add(1) == 1 {
				return Transient(errors.New("the database blinked"))
			}
			return record("blip")(ctx, tx, ev)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "blip")
		root.End()
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.blip", 2)
		checkAttempts(t, handleSpans(t, spans, "testmod.blip"), []wantAttempt{
			{"1", "retry_transient", "transient"},
			{"2", "applied", ""},
		})
	})
}

// TestTracing_DeadLetteredMessagesLastAttempt: the last attempt at a
// message parked as a dead letter says so; the dead letter keeps the
// message's trace context, and a replay is an attempt in its trace.
func TestTracing_DeadLetteredMessagesLastAttempt(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{MaxAttempts: 2})
		Handle(b, "testmod.poisoned", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			return fmt.Errorf("cannot handle %s", ev.Key)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "poison")
		root.End()
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.poisoned", 2)
		checkAttempts(t, handleSpans(t, spans, "testmod.poisoned"), []wantAttempt{
			{"1", "retry_permanent", "permanent"},
			{"2", "dead_letter", "permanent"},
		})
		var letters []DeadLetter
		e.waitFor("the dead letter", func() bool {
			letters, _ = b.DeadLetters(context.Background(), false, 10)
			return len(letters) == 1
		})
		pub := telemetrytest.Named(spans, publishHappened)[0]
		if tp := letters[0].Metadata[telemetry.KeyTraceparent]; !strings.Contains(tp, pub.SpanContext().SpanID().String()) {
			t.Fatalf("the dead letter's traceparent %q names not its publish span %s", tp, pub.SpanContext().SpanID())
		}

		// A replay (still failing) is one more attempt in the message's
		// trace, linked to the staff member's request.
		staff, req := otel.Tracer("test").Start(context.Background(), "POST /bus/dead-letters/:id/replay")
		if _, err := b.Replay(staff, letters[0].ID); !errors.As(err, new(*ReplayError)) {
			t.Fatalf("replay: %v, want a ReplayError", err)
		}
		req.End()
		spans = e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.poisoned", 3)
		replay := handleSpans(t, spans, "testmod.poisoned")[2]
		checkAttrs(t, replay, map[string]string{"modshop.replay": "true", "modshop.outcome": "dead_letter", "modshop.failure": "permanent"})
		if links := replay.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != req.SpanContext().SpanID() {
			t.Errorf("the replay's span links %v, want the request's span %s", links, req.SpanContext().SpanID())
		}
	})
}

// TestTracing_DuplicateDelivery: a message delivered twice shows an
// applied attempt and a duplicate one, both in its trace.
func TestTracing_DuplicateDelivery(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{})
		Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
		msg, err := newMessage(ctx, thingHappened{Key: "twice"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b.startPublish(ctx, thingHappened{}.EventName(), msg).End()
		root.End()
		e.publishTwice(b, msg)
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.record", 2)
		checkAttempts(t, handleSpans(t, spans, "testmod.record"), []wantAttempt{
			{"1", "applied", ""},
			{"1", "duplicate", ""},
		})
	})
}

// TestTracing_AChainIsOneTrace: a handler that publishes the next event
// keeps the trace: root → publish → handle → publish → handle.
func TestTracing_AChainIsOneTrace(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		ctx, root, rec := traced(t)
		e := newEnv(t)
		b := e.bus(Config{})
		Handle(b, "testmod.first", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			return b.Publish(ctx, tx, thingFollowed{Key: ev.Key})
		})
		Handle(b, "testmod.second", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingFollowed) error {
			return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'second')`, ev.Key).Error
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "chain")
		root.End()
		spans := e.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.second", 1)
		chain := []string{"test " + t.Name(), publishHappened, "handle testmod.first", publishFollowed, "handle testmod.second"}
		for i := 1; i < len(chain); i++ {
			child, parent := telemetrytest.Named(spans, chain[i]), telemetrytest.Named(spans, chain[i-1])
			if len(child) != 1 || len(parent) != 1 {
				t.Fatalf("want one %q under one %q:\n%s", chain[i], chain[i-1], telemetrytest.Tree(spans))
			}
			childOf(t, child[0], parent[0], spans)
		}
	})
}

// TestTracing_RabbitMQCarriesTheTraceAcrossTheBroker: through the outbox,
// the forwarder and the broker, the message keeps its traceparent and its
// handler's span is a child of its publish span.
func TestTracing_RabbitMQCarriesTheTraceAcrossTheBroker(t *testing.T) {
	t.Parallel()
	ctx, root, rec := traced(t)
	p := newRabbitPair(t)
	consumer := p.bus(p.conE, Config{MaxAttempts: 1})
	var traceparent atomic.Value
	Handle(consumer, "testmod.remote", p.conE.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		traceparent.Store(telemetry.Traceparent(ctx))
		if ev.Key == "refused" {
			return errors.New("refused") // parked at once: its dead letter shows the metadata
		}
		return record("testmod.remote")(ctx, tx, ev)
	})
	if err := consumer.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	publisher := p.bus(p.pubE, Config{})
	if err := publisher.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "remote")
	p.pubE.publish(publisher, ctx, "refused")
	root.End()
	spans := p.conE.waitSpans(rec, root.SpanContext().TraceID(), "handle testmod.remote", 2)
	pubs := telemetrytest.Named(spans, publishHappened)
	if len(pubs) != 2 {
		t.Fatalf("%d publish spans:\n%s", len(pubs), telemetrytest.Tree(spans))
	}
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range pubs {
		id, _ := telemetrytest.Attr(s, "messaging.message.id")
		byID[id] = s
	}
	for _, h := range telemetrytest.Named(spans, "handle testmod.remote") {
		id, _ := telemetrytest.Attr(h, "messaging.message.id")
		pub, ok := byID[id]
		if !ok {
			t.Fatalf("handle span of message %q, published by no publish span here:\n%s", id, telemetrytest.Tree(spans))
		}
		childOf(t, h, pub, spans)
	}
	var letters []DeadLetter
	p.conE.waitFor("the dead letter", func() bool {
		letters, _ = consumer.DeadLetters(context.Background(), false, 10)
		return len(letters) == 1
	})
	tp := letters[0].Metadata[telemetry.KeyTraceparent]
	id := letters[0].MessageID
	if pub, ok := byID[id]; !ok || !strings.Contains(tp, pub.SpanContext().SpanID().String()) {
		t.Fatalf("the message's traceparent after the broker: %q; want its publish span's", tp)
	}
	if got, _ := traceparent.Load().(string); telemetry.TraceIDOf(got) != root.SpanContext().TraceID().String() {
		t.Fatalf("the handler's context is in trace %q, want %s", telemetry.TraceIDOf(got), root.SpanContext().TraceID())
	}
}

// TestTracing_OffCostsOnlyTheNoopSpan: with a no-op tracer, a message's
// publish and handle spans allocate no more than starting and ending the
// no-op span itself does, and a message published outside any trace
// carries no trace context.
func TestTracing_OffCostsOnlyTheNoopSpan(t *testing.T) {
	b := &Bus{tracer: noop.NewTracerProvider().Tracer("")}
	h := &handler{name: "testmod.record", spanName: "handle testmod.record"}
	msg := message.NewMessage("id", nil)
	ctx := context.Background()
	base := testing.AllocsPerRun(100, func() {
		_, span := b.tracer.Start(ctx, "span")
		span.End()
	})
	publish := testing.AllocsPerRun(100, func() {
		b.startPublish(ctx, "test.thing_happened.v1", msg).End()
	})
	handle := testing.AllocsPerRun(100, func() {
		_, span := b.startHandle(ctx, h, msg, 1)
		endHandle(span, OutcomeRetryPermanent, errDuplicate)
	})
	if publish > base || handle > base {
		t.Errorf("allocations with tracing off: publish %v, handle %v; the no-op span alone %v", publish, handle, base)
	}
	if len(msg.Metadata) != 0 {
		t.Errorf("a message published outside any trace carries %v", msg.Metadata)
	}
}

// withoutStatements drops the statement spans ("db SELECT" and the like)
// from spans.
func withoutStatements(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if !strings.HasPrefix(s.Name(), "db ") {
			out = append(out, s)
		}
	}
	return out
}
