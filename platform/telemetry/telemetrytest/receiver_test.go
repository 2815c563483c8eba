package telemetrytest_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
)

func TestReceiver_DecodesWhatTheSDKExports(t *testing.T) {
	rcv := telemetrytest.NewReceiver()
	defer rcv.Close()
	prev := otel.GetTracerProvider()
	defer otel.SetTracerProvider(prev)
	shutdown, err := telemetry.Setup(context.Background(), telemetry.Settings{
		ServiceName: "modshop-order",
		Getenv:      func(k string) string { return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}[k] },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := telemetry.Tracer("test").Start(context.Background(), "parent")
	_, child := telemetry.Tracer("test").Start(ctx, "child")
	child.End()
	parent.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	id := parent.SpanContext().TraceID().String()
	spans := rcv.Trace(id)
	if len(spans) != 2 {
		t.Fatalf("received %d spans of trace %s: %+v", len(spans), id, rcv.Spans())
	}
	byName := map[string]telemetrytest.ReceivedSpan{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	if byName["child"].ParentID != byName["parent"].SpanID || byName["parent"].ParentID != "" {
		t.Errorf("parentage lost: %+v", spans)
	}
	if !rcv.Services(id)["modshop-order"] {
		t.Errorf("services %v, want modshop-order", rcv.Services(id))
	}
}
