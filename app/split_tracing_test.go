package app_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// startReceiver starts a real OTLP/HTTP receiver for the test, stopped
// after everything the test starts later (its processes flush their last
// spans as they stop).
func startReceiver(t *testing.T) *telemetrytest.Receiver {
	recv := telemetrytest.NewReceiver()
	t.Cleanup(recv.Close)
	return recv
}

// tracingEnv adds to env (a split shop's settings) what makes every
// process of it, the gateway too, export its spans to recv over OTLP/HTTP,
// quickly (a batch every 200 ms), and returns env.
func tracingEnv(env map[string]string, recv *telemetrytest.Receiver) map[string]string {
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = recv.URL
	env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
	return env
}

// splitServices are the service names the processes of a split shop give
// themselves: one per module (`serve --modules=<m>`) and the gateway's.
func splitServices() []string {
	out := []string{telemetry.ServiceName([]string{"gateway"}, false)}
	for _, m := range apptest.SplitModules {
		out = append(out, telemetry.ServiceName([]string{m}, false))
	}
	return out
}

// oneTracePerOrder places orders through the gateway, each with the
// traceparent of a client span of the test's own, and checks that each
// order's trace id is on spans of every process: the gateway's, the user
// process's (the remote authentication of the customer's session), the
// product, order and payment processes'; and that the bus's handle spans
// are children of publish spans sent by another process.
func oneTracePerOrder(t *testing.T, split *apptest.Split, recv *telemetrytest.Receiver) {
	w := sagasuite.NewWorld(t, split, map[string]int{"LAMP": 10})
	// A provider of the test's own, not exporting: it makes the trace ids.
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	var traces []string
	for i := range 3 {
		ctx, client := tp.Tracer("test").Start(context.Background(), "test places an order", trace.WithSpanKind(trace.SpanKindClient))
		r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"LAMP": 1}, testkit.Header("traceparent", telemetry.Traceparent(ctx)))
		client.End()
		if r.Status != http.StatusAccepted {
			t.Fatalf("order %d: %d %s", i, r.Status, r.Body)
		}
		w.WaitStatus(t, o.ID, "confirmed")
		traces = append(traces, client.SpanContext().TraceID().String())
	}

	services := splitServices()
	complete := func(id string) bool {
		got := recv.Services(id)
		for _, s := range services {
			if !got[s] {
				return false
			}
		}
		// Each process exports in batches of its own, so a later hop's
		// span may arrive before an earlier one's: wait for every hop's
		// handle span and the publish span above it.
		spans := recv.Trace(id)
		names := map[string]bool{}
		for _, s := range spans {
			names[s.Name] = true
		}
		for _, h := range confirmedSaga {
			if len(handled(spans, "handle "+h.handler)) == 0 ||
				!(names["publish "+h.event] || names["publish "+strings.TrimSuffix(h.event, ".v1")]) {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, id := range traces {
		for !complete(id) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}

	for _, id := range traces {
		spans := recv.Trace(id)
		got := recv.Services(id)
		for _, s := range services {
			if !got[s] {
				t.Errorf("trace %s has no span of service %s; it has %v:\n%s", id, s, slices.Sorted(maps.Keys(got)), listSpans(spans))
			}
		}
		if len(got) != len(services) {
			t.Errorf("trace %s has spans of %v, want exactly %v", id, slices.Sorted(maps.Keys(got)), services)
		}
		checkAcrossProcesses(t, id, spans)
	}
}

// checkAcrossProcesses checks the parentage of one order's spans across
// the processes: the gateway's server span is the root's child, its proxy
// call carries the trace to the order process, every process authenticates
// the customer with the user process, and each handle span is a child of
// the publish span of the process that sent its message.
func checkAcrossProcesses(t *testing.T, id string, spans []telemetrytest.ReceivedSpan) {
	t.Helper()
	byID := map[string]telemetrytest.ReceivedSpan{}
	for _, s := range spans {
		byID[s.SpanID] = s
	}
	gateway, order := telemetry.ServiceName([]string{"gateway"}, false), telemetry.ServiceName([]string{"order"}, false)
	var proxy, server *telemetrytest.ReceivedSpan
	for _, s := range spans {
		switch {
		case s.Service == gateway && s.Name == "gateway proxy POST":
			proxy = &s
		case s.Service == order && s.Name == "POST /api/v1/orders":
			server = &s
		}
	}
	switch {
	case proxy == nil || server == nil:
		t.Errorf("trace %s: want the gateway's span gateway proxy POST and the order process's POST /api/v1/orders:\n%s", id, listSpans(spans))
	case !descends(byID, *server, proxy.SpanID):
		t.Errorf("trace %s: the order process's POST /api/v1/orders is not under the gateway's proxy call:\n%s", id, listSpans(spans))
	}
	auth := false
	for _, s := range spans {
		if strings.HasPrefix(s.Name, "user authenticate") && s.Kind == tracepb.Span_SPAN_KIND_CLIENT {
			auth = true
		}
	}
	if !auth {
		t.Errorf("trace %s: no client span user authenticate:\n%s", id, listSpans(spans))
	}
	for _, h := range confirmedSaga {
		hs := handled(spans, "handle "+h.handler)
		if len(hs) == 0 {
			t.Errorf("trace %s: no span handle %s:\n%s", id, h.handler, listSpans(spans))
			continue
		}
		for _, s := range hs {
			p, ok := byID[s.ParentID]
			if !ok || (p.Name != "publish "+h.event && p.Name != "publish "+strings.TrimSuffix(h.event, ".v1")) {
				t.Errorf("trace %s: span %s of %s: parent %s %q, want the publish span of %s", id, s.Name, s.Service, s.ParentID, p.Name, h.event)
				continue
			}
			if want := telemetry.ServiceName([]string{h.module}, false); s.Service != want {
				t.Errorf("trace %s: span %s sent by %s, want %s", id, s.Name, s.Service, want)
			}
		}
	}
}

// handled is the spans called name that applied their message.
func handled(spans []telemetrytest.ReceivedSpan, name string) []telemetrytest.ReceivedSpan {
	var out []telemetrytest.ReceivedSpan
	for _, s := range spans {
		if s.Name == name && s.Attrs["modshop.outcome"] == "applied" {
			out = append(out, s)
		}
	}
	return out
}

// descends reports whether s is below the span ancestor.
func descends(byID map[string]telemetrytest.ReceivedSpan, s telemetrytest.ReceivedSpan, ancestor string) bool {
	for p, ok := byID[s.ParentID]; ok; p, ok = byID[p.ParentID] {
		if p.SpanID == ancestor {
			return true
		}
	}
	return false
}

// listSpans lists spans for a failure message: service, name, ids.
func listSpans(spans []telemetrytest.ReceivedSpan) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %-24s %-40s %s <- %s\n", s.Service, s.Name, s.SpanID, s.ParentID)
	}
	return b.String()
}
