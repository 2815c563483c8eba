package catalog

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
)

// spanPublisher publishes through the bus and keeps the span each event
// was published in: the span whose trace the bus carries on.
type spanPublisher struct {
	Publisher
	mu    sync.Mutex
	spans map[string]trace.SpanContext // by order id and event name
}

func (p *spanPublisher) Publish(ctx context.Context, tx *gorm.DB, evs ...bus.Event) error {
	p.mu.Lock()
	for _, ev := range evs {
		if r, ok := ev.(events.StockReleased); ok {
			p.spans[r.OrderID+" "+ev.EventName()] = trace.SpanContextFromContext(ctx)
		}
	}
	p.mu.Unlock()
	return p.Publisher.Publish(ctx, tx, evs...)
}

func (p *spanPublisher) releasedIn(orderID string) (trace.SpanContext, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc, ok := p.spans[orderID+" "+events.StockReleased{}.EventName()]
	return sc, ok
}

// sweepSpan returns the ended "product.sweep expiry" span of the order.
func sweepSpan(t *testing.T, rec *telemetrytest.Recorder, orderID string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range telemetrytest.Named(rec.Ended(), "product.sweep expiry") {
		if id, _ := telemetrytest.Attr(s, "modshop.order.id"); id == orderID {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d product.sweep expiry spans for order %s, want 1", len(found), orderID)
	}
	return found[0]
}

// A reservation the expiry sweep releases is released in a trace of its
// own: a root span "product.sweep expiry" (whatever span the sweep runs
// in), linked to the span that made the reservation, with the release's
// stock.released published inside it. A reservation made outside any
// trace is released in a root span without a link.
func TestReservation_TheExpirySweepStartsATraceLinkedToTheReservations(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	w := newWorld(t, Config{ReservationTTL: time.Millisecond})
	pub := &spanPublisher{Publisher: w.svc.pub, spans: map[string]trace.SpanContext{}}
	w.svc.pub = pub
	pid := w.product(t, "EXP-TRACE", 5)

	traced := order(orderevents.OrderLine{ProductID: pid, Quantity: 1})
	ctx, handler := otel.Tracer("test").Start(context.Background(), "handle product.reserve_stock")
	err := w.db.Transaction(func(tx *gorm.DB) error { return w.svc.Reserve(ctx, tx, traced) })
	handler.End()
	if err != nil {
		t.Fatal(err)
	}
	untraced := order(orderevents.OrderLine{ProductID: pid, Quantity: 1})
	if err := w.reserve(untraced); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)

	// A sweep started inside some span (a staff request, say) still
	// starts a new trace per reservation.
	sweepCtx, outer := otel.Tracer("test").Start(context.Background(), "outer")
	n, err := w.svc.ReleaseExpired(sweepCtx, 10)
	outer.End()
	if err != nil || n != 2 {
		t.Fatalf("released %d (%v), want 2", n, err)
	}

	sweep := sweepSpan(t, rec, traced.OrderID)
	if sweep.Parent().IsValid() {
		t.Fatalf("product.sweep expiry has parent %s, want a root span; its trace:\n%s",
			sweep.Parent().SpanID(), telemetrytest.Tree(rec.Trace(sweep.SpanContext().TraceID())))
	}
	if sweep.SpanContext().TraceID() == handler.SpanContext().TraceID() {
		t.Fatal("the sweep's span is in the reservation's trace, want a trace of its own")
	}
	links := sweep.Links()
	if len(links) != 1 || links[0].SpanContext.TraceID() != handler.SpanContext().TraceID() ||
		links[0].SpanContext.SpanID() != handler.SpanContext().SpanID() {
		t.Fatalf("product.sweep expiry links %v, want one link to the reserving span %s/%s",
			links, handler.SpanContext().TraceID(), handler.SpanContext().SpanID())
	}
	if v, _ := telemetrytest.Attr(sweep, "modshop.reservation.released"); v != "true" {
		t.Errorf("modshop.reservation.released = %q, want true", v)
	}
	in, ok := pub.releasedIn(traced.OrderID)
	if !ok || in.TraceID() != sweep.SpanContext().TraceID() || in.SpanID() != sweep.SpanContext().SpanID() {
		t.Fatalf("stock.released published in %v/%v (%v), want the sweep's span %s/%s",
			in.TraceID(), in.SpanID(), ok, sweep.SpanContext().TraceID(), sweep.SpanContext().SpanID())
	}

	plain := sweepSpan(t, rec, untraced.OrderID)
	if plain.Parent().IsValid() || len(plain.Links()) != 0 {
		t.Fatalf("an untraced reservation's sweep span: parent %v, links %v; want a root without links", plain.Parent(), plain.Links())
	}
	if plain.SpanContext().TraceID() == sweep.SpanContext().TraceID() || plain.SpanContext().TraceID() == outer.SpanContext().TraceID() {
		t.Fatal("two reservations released in one trace, or in the sweep's caller's: want a trace per reservation")
	}
}
