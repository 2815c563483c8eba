// Package telemetry owns modshop's tracing: the OpenTelemetry tracer
// provider a process sets up from the standard OTEL_* variables, the W3C
// trace context that crosses the bus in message metadata and rows, and the
// trace and span ids on log lines.
//
// Instrumented code asks for its tracer with Tracer and never holds a
// provider: the global provider is the process's (ADR 0029). With no
// exporter configured the global provider stays OpenTelemetry's no-op one:
// spans are not recorded, and a trace context that arrives (an HTTP
// header, a message's metadata) is still passed on, so a process that does
// not trace does not cut the trace of one that does.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the scope name of modshop's own spans; packages name
// theirs below it (Tracer("bus") is ".../bus").
const Instrumentation = "github.com/modshop/modshop"

// Tracer returns the tracer of one part of modshop (for example "bus",
// "db", "order"), from the global provider. It may be called before Setup:
// the global provider delegates to the one Setup installs.
func Tracer(part string) trace.Tracer {
	return otel.Tracer(Instrumentation + "/" + part)
}

// Propagator carries W3C trace context and baggage. The bus and the row
// stores use it directly, so that context crosses them whatever the global
// propagator is (Setup makes it the global one too).
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(
	propagation.TraceContext{}, propagation.Baggage{})

// Settings are what Setup reads besides the OTEL_* variables.
type Settings struct {
	// ServiceName is the process's name unless OTEL_SERVICE_NAME (or
	// service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise; see
	// ServiceName.
	ServiceName string
	// Version is service.version.
	Version string
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
}

// Enabled reports whether getenv configures a trace exporter: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
// or OTEL_TRACES_EXPORTER=otlp, and neither OTEL_SDK_DISABLED=true nor
// OTEL_TRACES_EXPORTER=none.
func Enabled(getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup installs the global tracer provider and propagator from the OTEL_*
// variables: the exporter (OTLP, over http/protobuf unless
// OTEL_EXPORTER_OTLP_PROTOCOL or OTEL_EXPORTER_OTLP_TRACES_PROTOCOL says
// grpc; the endpoint, headers and timeout as the exporter reads them),
// the sampler (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG: the SDK reads
// them; parent-based always-on by default) and the resource
// (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES). With no exporter
// configured it installs only the propagator and returns a shutdown that
// does nothing: no span is recorded. shutdown flushes what is buffered.
func Setup(ctx context.Context, s Settings) (shutdown func(context.Context) error, err error) {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	otel.SetTextMapPropagator(Propagator)
	none := func(context.Context) error { return nil }
	if !Enabled(getenv) {
		return none, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	// The exporters read the rest of OTEL_EXPORTER_OTLP_* (headers,
	// timeout, certificates) themselves; the endpoint is read here, from
	// getenv, so that the process's settings are the ones its tests give.
	traces, base := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), strings.TrimRight(getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "/")
	var exp sdktrace.SpanExporter
	switch strings.ToLower(strings.TrimSpace(protocol)) {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		switch {
		case traces != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(traces))
		case base != "":
			opts = append(opts, otlptracehttp.WithEndpointURL(base+"/v1/traces"))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		switch {
		case traces != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(traces))
		case base != "":
			opts = append(opts, otlptracegrpc.WithEndpointURL(base))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		return none, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: modshop exports traces over http/protobuf or grpc", protocol)
	}
	if err != nil {
		return none, fmt.Errorf("trace exporter: %w", err)
	}
	res, err := Resource(ctx, s)
	if err != nil {
		_ = exp.Shutdown(ctx)
		return none, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// Resource describes the process: service.name is s.ServiceName unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it.
func Resource(ctx context.Context, s Settings) (*resource.Resource, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", s.ServiceName)}
	if s.Version != "" {
		attrs = append(attrs, attribute.String("service.version", s.Version))
	}
	// Later detectors win: the environment over the process's own name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attrs...),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}

// ServiceName is the name a process gives itself: "modshop" for the whole
// shop in one binary, "modshop-order" or "modshop-order+payment" for a
// process that runs only those modules, in the order given, and
// "modshop-gateway" for the gateway (modules == ["gateway"]).
func ServiceName(modules []string, all bool) string {
	if all || len(modules) == 0 {
		return "modshop"
	}
	return "modshop-" + strings.Join(modules, "+")
}
