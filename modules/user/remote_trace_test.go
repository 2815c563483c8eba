package user_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
)

// A remote session check inside a traced request is a client span "user
// authenticate GET", child of the request's span, and sends its
// traceparent: the user module's server span continues the trace.
func TestRemoteAuthenticator_SendsTheTraceToTheUserModule(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"0b7e3c5e-2c07-4c5b-9d8e-2f3f1a3c1b10","username":"u","roles":[]}` + "\n"))
	}))
	t.Cleanup(srv.Close)

	ctx, span := telemetry.Tracer("test").Start(context.Background(), "GET /api/v1/orders")
	if _, err := user.RemoteAuthenticator(srv.URL, nil).Authenticate(ctx, "a-token"); err != nil {
		t.Fatal(err)
	}
	span.End()
	mu.Lock()
	sent := trace.SpanContextFromContext(telemetry.FromTraceparent(context.Background(), got))
	mu.Unlock()
	if sent.TraceID() != span.SpanContext().TraceID() {
		t.Fatalf("the user module received traceparent %q, want one of trace %s", got, span.SpanContext().TraceID())
	}
	spans := rec.Trace(span.SpanContext().TraceID())
	client := telemetrytest.Named(spans, "user authenticate GET")
	if len(client) != 1 || client[0].SpanKind() != trace.SpanKindClient ||
		client[0].Parent().SpanID() != span.SpanContext().SpanID() || client[0].SpanContext().SpanID() != sent.SpanID() {
		t.Fatalf("want a client span user authenticate GET, child of the request's, parent of the user module's:\n%s", telemetrytest.Tree(spans))
	}
}
