package telemetry

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// Gin returns the middleware that makes a server span of each request
// (named "METHOD /route/:param", child of the caller's traceparent header
// when it sends one) and puts it in the request's context for what runs
// inside. service is the process's service name (http.server attributes).
// Requests skip reports true for (probes, metrics scrapes) get no span.
func Gin(service string, skip func(*http.Request) bool) gin.HandlerFunc {
	opts := []otelgin.Option{
		otelgin.WithPropagators(Propagator),
		otelgin.WithSpanNameFormatter(func(c *gin.Context) string {
			route := c.FullPath()
			if route == "" {
				route = "unrouted"
			}
			return strings.ToUpper(c.Request.Method) + " " + route
		}),
	}
	if skip != nil {
		opts = append(opts, otelgin.WithFilter(func(r *http.Request) bool { return !skip(r) }))
	}
	return otelgin.Middleware(service, opts...)
}

// Transport wraps rt (http.DefaultTransport when nil) so that each request
// is a client span and carries the caller's trace context as a
// traceparent header. name names the span ("gateway proxy", "user
// authenticate").
func Transport(rt http.RoundTripper, name string) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt,
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name + " " + r.Method }),
	)
}
