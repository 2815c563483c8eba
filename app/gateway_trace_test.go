package app_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// The gateway makes a server span of each request it sends on (named
// after the route prefix, child of the caller's traceparent when there is
// one) and a client span "gateway proxy GET" below it, whose traceparent
// the process behind receives: its server span continues the trace. The
// gateway's log lines carry the trace id.
func TestGateway_TracesEachRequestAndPassesTheTraceOn(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	var mu sync.Mutex
	var received []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(upstream.Close)
	u, _ := url.Parse(upstream.URL)
	var logged bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(lockedWriter{&logMu, &logged}, nil)))
	h, err := app.NewGateway(app.GatewayConfig{
		Routes:              []app.GatewayRoute{{Prefix: "/api/v1/orders", Upstream: u}},
		UpstreamTimeout:     30 * time.Second,
		MaxBodyBytes:        1 << 20,
		MaxConnsPerUpstream: 4,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(h)
	t.Cleanup(gw.Close)

	const callerTrace = "7bf92f3577b34da6a3ce929d0e0e4736"
	for _, traceparent := range []string{"", "00-" + callerTrace + "-00f067aa0ba902b7-01"} {
		mu.Lock()
		received = nil
		mu.Unlock()
		req, _ := http.NewRequest(http.MethodGet, gw.URL+"/api/v1/orders/abc", nil)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("through the gateway: %d", resp.StatusCode)
		}
		mu.Lock()
		got := received
		mu.Unlock()
		if len(got) != 1 || got[0] == "" {
			t.Fatalf("the upstream received traceparent %q, want one", got)
		}
		sent := trace.SpanContextFromContext(telemetry.FromTraceparent(t.Context(), got[0]))
		if traceparent != "" && sent.TraceID().String() != callerTrace {
			t.Errorf("the upstream received trace %s, want the caller's %s", sent.TraceID(), callerTrace)
		}
		var spans []sdktrace.ReadOnlySpan
		testkit.Eventually(t, "the gateway's spans of trace "+sent.TraceID().String(), func() bool {
			spans = rec.Trace(sent.TraceID())
			return len(telemetrytest.Named(spans, "GET /api/v1/orders")) == 1
		})
		server := telemetrytest.Named(spans, "GET /api/v1/orders")[0]
		proxy := telemetrytest.Named(spans, "gateway proxy GET")
		if len(proxy) != 1 || proxy[0].SpanContext().SpanID() != sent.SpanID() ||
			proxy[0].Parent().SpanID() != server.SpanContext().SpanID() || proxy[0].SpanKind() != trace.SpanKindClient {
			t.Errorf("want the upstream's parent to be a client span gateway proxy GET, child of the gateway's server span:\n%s",
				telemetrytest.Tree(spans))
		}
		if traceparent != "" && server.Parent().SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("the gateway's server span is not the caller's child:\n%s", telemetrytest.Tree(spans))
		}
		logMu.Lock()
		lines := logged.String()
		logMu.Unlock()
		if !strings.Contains(lines, `"trace_id":"`+sent.TraceID().String()+`"`) {
			t.Errorf("the gateway's access log carries no trace id %s:\n%s", sent.TraceID(), lines)
		}
	}
	// Probes are not traced.
	before := len(rec.Ended())
	resp, err := http.Get(gw.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, s := range rec.Ended()[before:] {
		if name := s.Name(); strings.Contains(name, "healthz") {
			t.Errorf("a probe made the span %s", name)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
