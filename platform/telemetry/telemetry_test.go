package telemetry_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/telemetry"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestEnabled_OnlyWithAnExporterConfigured(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}, false},
	} {
		if got := telemetry.Enabled(env(c.env)); got != c.want {
			t.Errorf("Enabled(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

func TestServiceName_SaysWhichModulesAProcessRuns(t *testing.T) {
	for _, c := range []struct {
		mods []string
		all  bool
		want string
	}{
		{nil, true, "modshop"},
		{[]string{"user", "product", "order", "payment"}, true, "modshop"},
		{[]string{"order"}, false, "modshop-order"},
		{[]string{"order", "payment"}, false, "modshop-order+payment"},
		{[]string{"gateway"}, false, "modshop-gateway"},
	} {
		if got := telemetry.ServiceName(c.mods, c.all); got != c.want {
			t.Errorf("ServiceName(%v, %v) = %q, want %q", c.mods, c.all, got, c.want)
		}
	}
}

func TestCarry_TraceContextRoundTripsThroughMetadataAndTraceparent(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "publish")
	defer span.End()

	md := map[string]string{"event": "order.placed"}
	telemetry.Inject(ctx, md)
	if !strings.Contains(md[telemetry.KeyTraceparent], span.SpanContext().TraceID().String()) {
		t.Fatalf("metadata %v carries no traceparent of trace %s", md, span.SpanContext().TraceID())
	}
	got := trace.SpanContextFromContext(telemetry.Extract(context.Background(), md))
	if got.TraceID() != span.SpanContext().TraceID() || got.SpanID() != span.SpanContext().SpanID() || !got.IsRemote() {
		t.Fatalf("extracted %v, want the remote span %v", got, span.SpanContext())
	}

	tpv := telemetry.Traceparent(ctx)
	if telemetry.TraceIDOf(tpv) != span.SpanContext().TraceID().String() {
		t.Fatalf("TraceIDOf(%q) = %q", tpv, telemetry.TraceIDOf(tpv))
	}
	link, ok := telemetry.LinkTo(tpv)
	if !ok || link.SpanContext.SpanID() != span.SpanContext().SpanID() {
		t.Fatalf("LinkTo(%q) = %v, %v", tpv, link, ok)
	}
	for _, bad := range []string{"", "00-zz-yy-01", "garbage"} {
		if _, ok := telemetry.LinkTo(bad); ok {
			t.Errorf("LinkTo(%q) linked", bad)
		}
		if id := telemetry.TraceIDOf(bad); id != "" {
			t.Errorf("TraceIDOf(%q) = %q", bad, id)
		}
	}
	if telemetry.Traceparent(context.Background()) != "" {
		t.Error("a context without a span has a traceparent")
	}
	empty := map[string]string{}
	telemetry.Inject(context.Background(), empty)
	if len(empty) != 0 {
		t.Errorf("a context without a span wrote %v", empty)
	}
}

func TestLogHandler_AddsTraceAndSpanIDsInsideASpan(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("module", "order")
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "handle")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %s", len(lines), buf.String())
	}
	want := `"trace_id":"` + span.SpanContext().TraceID().String() + `","span_id":"` + span.SpanContext().SpanID().String() + `"`
	if !strings.Contains(lines[0], want) || !strings.Contains(lines[0], `"module":"order"`) {
		t.Errorf("line inside the span: %s\nwant it to hold %s", lines[0], want)
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("line outside any span carries a trace id: %s", lines[1])
	}
}

func TestSetup_ExportsOverOTLPHTTPOnlyWhenConfigured(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" && r.Header.Get("Content-Type") == "application/x-protobuf" && len(body) > 0 {
			posts.Add(1)
		}
	}))
	defer srv.Close()
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)

	shutdown, err := telemetry.Setup(context.Background(), telemetry.Settings{ServiceName: "modshop", Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	_, span := telemetry.Tracer("test").Start(context.Background(), "off")
	if span.IsRecording() {
		t.Error("a span records with no exporter configured")
	}
	span.End()
	_ = shutdown(context.Background())

	shutdown, err = telemetry.Setup(context.Background(), telemetry.Settings{ServiceName: "modshop", Getenv: env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
	})})
	if err != nil {
		t.Fatal(err)
	}
	_, span = telemetry.Tracer("test").Start(context.Background(), "on")
	if !span.IsRecording() {
		t.Error("a span does not record with an OTLP endpoint set")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no spans reached the OTLP endpoint")
	}

	if _, err := telemetry.Setup(context.Background(), telemetry.Settings{Getenv: env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL, "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
	})}); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("an unknown protocol: err = %v", err)
	}
}
