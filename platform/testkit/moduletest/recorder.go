package moduletest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// Recorder keeps the events published on a bus, of the types a test asks
// for with Record, in the order its handlers received them. It receives
// them as a module does (a consumer group per type), so it sees what
// other modules would. A delivery that is repeated (a batch rolled back
// and read again) is recorded again: count messages in the bus tables
// where an exact count matters.
type Recorder struct {
	bus      *bus.Bus
	consumer bus.Consumer

	mu     sync.Mutex
	events []bus.Event
	more   chan struct{} // closed when an event arrives, then replaced
}

// NewRecorder makes a recorder on b whose handlers keep their inbox in db
// (a module's database handle).
func NewRecorder(b *bus.Bus, db *gorm.DB) *Recorder {
	return &Recorder{bus: b, consumer: bus.Consumer{Module: "testkit_recorder", DB: db}, more: make(chan struct{})}
}

// Record subscribes r to the events of type T. Call it before the bus
// starts.
func Record[T bus.Event](r *Recorder) {
	var zero T
	name := "testkit.record." + strings.ReplaceAll(zero.EventName(), ".", "_")
	bus.Handle(r.bus, name, r.consumer, func(_ context.Context, _ *gorm.DB, ev T) error {
		r.add(ev)
		return nil
	})
}

func (r *Recorder) add(ev bus.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	close(r.more)
	r.more = make(chan struct{})
}

// Events returns what was recorded so far.
func (r *Recorder) Events() []bus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Event(nil), r.events...)
}

// All returns the recorded events of type T, in order.
func All[T bus.Event](r *Recorder) []T {
	var out []T
	for _, ev := range r.Events() {
		if t, ok := ev.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// WaitFor waits for an event of type T that match accepts and returns the
// first; it fails the test, listing what was recorded, if none comes
// within testkit.Patience.
func WaitFor[T bus.Event](tb testing.TB, r *Recorder, what string, match func(T) bool) T {
	tb.Helper()
	deadline := time.NewTimer(testkit.Patience)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		seen, more := append([]bus.Event(nil), r.events...), r.more
		r.mu.Unlock()
		for _, ev := range seen {
			if t, ok := ev.(T); ok && match(t) {
				return t
			}
		}
		select {
		case <-more:
		case <-deadline.C:
			tb.Fatalf("waited %s for %s; recorded: %s", testkit.Patience, what, describe(seen))
			var zero T
			return zero
		}
	}
}

func describe(events []bus.Event) string {
	if len(events) == 0 {
		return "nothing"
	}
	parts := make([]string, len(events))
	for i, ev := range events {
		parts[i] = fmt.Sprintf("%s %+v", ev.EventName(), ev)
	}
	return strings.Join(parts, "; ")
}
