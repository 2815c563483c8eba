package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// TestLocalOverview_OwnGroupsOnlyEachLabelledWithItsProcess: two processes
// on one database, each with its handler on the same topic. Each one's
// local overview (what the gateway merges) shows its own group alone,
// labelled with its process, with its dead letters; the database overview
// still shows both, labelling only its own; each process lists only its own
// handlers' dead letters locally.
func TestLocalOverview_OwnGroupsOnlyEachLabelledWithItsProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	first := e.bus(Config{Process: "modshop-first", MaxAttempts: 1})
	second := e.bus(Config{Process: "modshop-second", MaxAttempts: 1})
	Handle(first, "testmod.first", e.consumer(), record("testmod.first"))
	// A handler that has applied nothing yet: last processed never.
	Handle(first, "testmod.idle", e.consumer(), func(context.Context, *gorm.DB, thingFollowed) error { return nil })
	Handle(second, "testmod.second", e.consumer(), func(context.Context, *gorm.DB, thingHappened) error {
		return errors.New("never")
	})
	for _, b := range []*Bus{first, second} {
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(first, ctx, "one-view")
	e.waitFor("the first handler", func() bool { return e.effects("one-view") == 1 })
	e.waitFor("the second handler's dead letter", func() bool {
		d, err := second.DeadLetters(ctx, false, 10)
		return err == nil && len(d) == 1
	})
	topic := thingHappened{}.EventName()
	consumers := func(stats []TopicStats) map[string]ConsumerStats {
		out := map[string]ConsumerStats{}
		for _, ts := range stats {
			if ts.Topic == topic {
				for _, c := range ts.Consumers {
					out[c.Handler] = c
				}
			}
		}
		return out
	}
	for _, c := range []struct {
		b            *Bus
		process, own string
		other        string
		dead         int64
	}{{first, "modshop-first", "testmod.first", "testmod.second", 0}, {second, "modshop-second", "testmod.second", "testmod.first", 1}} {
		e.waitFor(c.process+"'s group caught up", func() bool {
			local, err := c.b.LocalOverview(ctx)
			if err != nil {
				t.Fatal(err)
			}
			cs := consumers(local)
			return len(cs) == 1 && cs[c.own].Lag == 0
		})
		local, err := c.b.LocalOverview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs := consumers(local)
		if got := cs[c.own]; got.Process != c.process || got.DeadLetters != c.dead || got.LastProcessed == nil {
			t.Errorf("%s's local overview of its own group: %+v, want process %s, %d dead letters, a last processed time", c.process, got, c.process, c.dead)
		}
		if _, ok := cs[c.other]; ok {
			t.Errorf("%s's local overview shows the other process's group %s", c.process, c.other)
		}
		all, err := c.b.Overview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cs = consumers(all)
		if cs[c.own].Process != c.process || cs[c.other].Process != "" {
			t.Errorf("%s's database overview: %+v: want both groups, its own labelled %s, the other unlabelled", c.process, cs, c.process)
		}
		for _, ts := range local {
			for _, cs := range ts.Consumers {
				if cs.Handler == "testmod.idle" && (cs.LastProcessed != nil || cs.Process != "modshop-first") {
					t.Errorf("the idle handler: %+v, want last processed never, from modshop-first", cs)
				}
			}
		}
		letters, err := c.b.LocalDeadLetters(ctx, false, 10)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(letters)) != c.dead {
			t.Errorf("%s lists %d dead letters of its own, want %d", c.process, len(letters), c.dead)
		}
		for _, d := range letters {
			if d.Handler != c.own || d.Process != c.process {
				t.Errorf("%s lists %+v as its own", c.process, d)
			}
		}
	}
}

// TestMetrics_EachGaugeHasOneOwner: two processes on one database, as a
// split shop runs them; the first's modules publish the topic, the second
// publishes nothing (Publishes empty). Summed over both processes' scrapes,
// the topic's published count is the real one, and each handler's lag,
// dead letters and activity come from its own process alone.
func TestMetrics_EachGaugeHasOneOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	topic := thingHappened{}.EventName()
	regFirst, regSecond := prometheus.NewRegistry(), prometheus.NewRegistry()
	first := e.bus(Config{Process: "modshop-first", Publishes: []string{topic}, Metrics: regFirst, MaxAttempts: 1})
	second := e.bus(Config{Process: "modshop-second", Publishes: []string{}, Metrics: regSecond, MaxAttempts: 1})
	Handle(first, "testmod.first", e.consumer(), record("testmod.first"))
	Handle(second, "testmod.second", e.consumer(), func(context.Context, *gorm.DB, thingHappened) error {
		return errors.New("never")
	})
	for _, b := range []*Bus{first, second} {
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(first, ctx, "owned")
	e.waitFor("the dead letter", func() bool {
		d, err := second.DeadLetters(ctx, false, 10)
		return err == nil && len(d) == 1
	})
	e.waitFor("the first handler", func() bool { return e.effects("owned") == 1 })

	// series gathers name's series by their labels, from each registry,
	// summed: what a dashboard's sum over processes shows.
	type series struct{ sum, reporters float64 }
	gather := func(name, label, value string) series {
		var s series
		for _, reg := range []*prometheus.Registry{regFirst, regSecond} {
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range families {
				if f.GetName() != name {
					continue
				}
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == label && l.GetValue() == value {
							// nil-safe getters: a gauge or a counter
							s.sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
							s.reporters++
						}
					}
				}
			}
		}
		return s
	}
	e.waitFor("lag 0 for the first handler", func() bool {
		return gather("modshop_bus_lag_messages", "handler", "testmod.first").sum == 0
	})
	if s := gather("modshop_bus_messages_published", "topic", topic); s.sum != 1 || s.reporters != 1 {
		t.Errorf("messages published to %s, summed over the processes: %v from %v processes; want 1 from its publisher's alone", topic, s.sum, s.reporters)
	}
	if s := gather("modshop_bus_dead_letters_open", "handler", "testmod.second"); s.sum != 1 || s.reporters != 1 {
		t.Errorf("open dead letters of testmod.second, summed: %v from %v processes; want 1 from its own process alone", s.sum, s.reporters)
	}
	for _, h := range []string{"testmod.first", "testmod.second"} {
		for _, name := range []string{"modshop_bus_lag_messages", "modshop_bus_consumer_group_active", "modshop_bus_dead_letters_open"} {
			if s := gather(name, "handler", h); s.reporters != 1 {
				t.Errorf("%s{handler=%q} reported by %v processes, want 1 (its own)", name, h, s.reporters)
			}
		}
	}
}

// TestReplay_KeepsTheMessagesMetadataAndTraceContext: a dead letter
// replayed by staff reaches its handler with the message's metadata (its
// correlation id) and in the trace of the message's publisher, as its
// first delivery did.
func TestReplay_KeepsTheMessagesMetadataAndTraceContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var broken atomic.Bool
	broken.Store(true)
	var mu sync.Mutex
	var seen []Metadata
	var traces []trace.TraceID
	b := e.bus(Config{MaxAttempts: 1})
	Handle(b, "testmod.traced", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		md, _ := MessageMetadata(ctx)
		mu.Lock()
		seen = append(seen, md)
		traces = append(traces, trace.SpanContextFromContext(ctx).TraceID())
		mu.Unlock()
		if broken.Load() {
			return errors.New("not yet")
		}
		return record("testmod.traced")(ctx, tx, ev)
	})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(b, WithCorrelationID(ctx, "order-42"), "traced")
	var letters []DeadLetter
	e.waitFor("the dead letter", func() bool {
		var err error
		letters, err = b.DeadLetters(ctx, false, 10)
		return err == nil && len(letters) == 1
	})
	// The publisher's trace context, as the publish stores it in the
	// message's metadata (set here, whatever the publish stored).
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if _, err := e.admin.ExecContext(ctx, `UPDATE bus.dead_letters SET metadata = metadata || jsonb_build_object('traceparent', $1::text) WHERE id = $2`,
		traceparent, letters[0].ID); err != nil {
		t.Fatal(err)
	}
	broken.Store(false)
	d, err := b.Replay(ctx, letters[0].ID)
	if err != nil || d.Resolution == nil || *d.Resolution != "replayed" {
		t.Fatalf("replay: %+v, %v", d, err)
	}
	if d.Metadata["traceparent"] != traceparent || d.Metadata[KeyCorrelationID] != "order-42" {
		t.Errorf("the dead letter's metadata after the replay: %v", d.Metadata)
	}
	mu.Lock()
	defer mu.Unlock()
	last := seen[len(seen)-1]
	if last.CorrelationID != "order-42" || last.MessageID != letters[0].MessageID || last.Event != (thingHappened{}).EventName() {
		t.Errorf("the replayed handler saw metadata %+v, want the message's", last)
	}
	if got := traces[len(traces)-1].String(); got != strings.Split(traceparent, "-")[1] {
		t.Errorf("the replayed handler ran in trace %s, want the publisher's %s", got, strings.Split(traceparent, "-")[1])
	}
}
