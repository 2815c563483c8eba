// Package telemetrytest records the spans a test's code ends, in memory,
// through the global tracer provider the instrumented code uses.
package telemetrytest

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/telemetry"
)

// Recorder holds every span ended in the process since Install.
type Recorder struct{ rec *tracetest.SpanRecorder }

var (
	once     sync.Once
	recorder *Recorder
)

// Install makes the global tracer provider an always-on one that records
// in memory, once per test binary (tests running in parallel share it:
// pick a test's spans by trace id), and returns its recorder.
func Install() *Recorder {
	once.Do(func() {
		rec := tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(
			sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSpanProcessor(rec),
		))
		otel.SetTextMapPropagator(telemetry.Propagator)
		recorder = &Recorder{rec: rec}
	})
	return recorder
}

// Ended returns every span ended so far.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Trace returns the ended spans of one trace, in the order they started.
func (r *Recorder) Trace(id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
	return out
}

// Named returns the spans of spans called name.
func Named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of the attribute key of s as a string, and
// whether s has it.
func Attr(s sdktrace.ReadOnlySpan, key string) (string, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit(), true
		}
	}
	return "", false
}

// Tree draws spans as an indented tree (parents above children), for a
// failing test's message.
func Tree(spans []sdktrace.ReadOnlySpan) string {
	byParent := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		p := s.Parent().SpanID()
		if !s.Parent().IsValid() || !ids[p] {
			roots = append(roots, s)
			continue
		}
		byParent[p] = append(byParent[p], s)
	}
	var b strings.Builder
	var draw func(s sdktrace.ReadOnlySpan, depth int)
	draw = func(s sdktrace.ReadOnlySpan, depth int) {
		fmt.Fprintf(&b, "%s%s [%s] %s\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind(), s.SpanContext().SpanID())
		for _, c := range byParent[s.SpanContext().SpanID()] {
			draw(c, depth+1)
		}
	}
	for _, r := range roots {
		draw(r, 0)
	}
	return b.String()
}
