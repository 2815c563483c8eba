package httpx

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/telemetry"
)

// A problem carries the trace id of the request's span context beside its
// request id: also when this process records nothing and only passes on
// the caller's trace (the no-op provider keeps the caller's span
// context); none when the request is not traced.
func TestWriteProblem_CarriesTheTraceIDOfATracedRequest(t *testing.T) {
	t.Parallel()
	r := gin.New()
	r.Use(RequestIDs(), func(c *gin.Context) {
		// What the server span middleware does with an incoming
		// traceparent when no exporter is configured.
		c.Request = c.Request.WithContext(telemetry.Extract(c.Request.Context(), map[string]string{
			telemetry.KeyTraceparent: c.GetHeader("traceparent"),
		}))
		c.Next()
	}, Errors(slog.New(slog.DiscardHandler)))
	r.GET("/things/:id", func(c *gin.Context) { Fail(c, NotFound("no such thing")) })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req := httptest.NewRequest(http.MethodGet, "/things/1", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	p := problemOf(t, serve(r, req))
	if p["trace_id"] != traceID || p["request_id"] == "" {
		t.Errorf("problem %v: want trace_id %s beside the request_id", p, traceID)
	}

	p = problemOf(t, serve(r, httptest.NewRequest(http.MethodGet, "/things/1", nil)))
	if _, ok := p["trace_id"]; ok {
		t.Errorf("an untraced request's problem has a trace_id: %v", p)
	}
}
