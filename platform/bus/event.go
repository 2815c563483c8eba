package bus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"sync"
)

// Event is a typed message with a stable, versioned name such as
// "order.placed.v1". Each module declares its events in its events package.
type Event interface {
	EventName() string
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.v[0-9]+$`)

// Registry maps event names to their Go types, so a consumer can decode a
// payload knowing only the name in its metadata.
type Registry struct {
	mu    sync.RWMutex
	types map[string]reflect.Type
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{types: map[string]reflect.Type{}} }

// Register adds event types (pass zero values). A name registered twice with
// another type is a programming error and panics at start-up.
func (r *Registry) Register(events ...Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range events {
		name := ev.EventName()
		if !validName.MatchString(name) || len(name) > 48 {
			panic(fmt.Sprintf("bus: event name %q must look like module.thing.v1 (at most 48 characters)", name))
		}
		t := reflect.TypeOf(ev)
		if old, ok := r.types[name]; ok && old != t {
			panic(fmt.Sprintf("bus: event %q registered as %v and %v", name, old, t))
		}
		r.types[name] = t
	}
}

// Names lists every registered event name, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Known reports whether name is registered.
func (r *Registry) Known(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.types[name]
	return ok
}

// decode turns a payload into a value of the type registered for name.
func (r *Registry) decode(name string, payload []byte) (Event, error) {
	r.mu.RLock()
	t, ok := r.types[name]
	r.mu.RUnlock()
	if !ok {
		return nil, errUnknownEvent
	}
	ptr := reflect.New(t)
	if err := json.Unmarshal(payload, ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return ptr.Elem().Interface().(Event), nil
}
