package httpstack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpstack"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type noSessions struct{}

func (noSessions) Authenticate(context.Context, string) (auth.Identity, error) {
	return auth.Identity{}, auth.ErrInvalidToken
}

// tracedServer serves, behind the stack, GET /things/:id (one statement
// on a module pool of schema "things") and GET /missing (a 404 problem
// after a statement), logging as JSON into the returned buffer. The
// logger is the one the shop makes: its handler wrapped by
// telemetry.LogHandler.
func tracedServer(t *testing.T, opts ...db.Option) (url string, logged *syncBuffer) {
	t.Helper()
	ctx := context.Background()
	dbURL := testkit.NewDatabase(t)
	admin, err := db.Open(ctx, dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, "things"); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, dbURL, "things", 2, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })

	logged = &syncBuffer{}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(logged, nil)))
	r, err := httpstack.New(httpstack.Config{
		Service:       "modshop-things",
		Log:           log,
		Metrics:       httpx.NewMetrics(),
		InFlight:      httpx.NewInFlight(16, 1<<20),
		Authenticator: noSessions{},
	})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func(c *gin.Context) (string, error) {
		var s string
		err := pool.QueryRowContext(c.Request.Context(), "SELECT $1::text", c.Param("id")).Scan(&s)
		return s, err
	}
	r.GET("/things/:id", func(c *gin.Context) {
		s, err := lookup(c)
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"id": s})
	})
	r.GET("/missing/:id", func(c *gin.Context) {
		if _, err := lookup(c); err != nil {
			httpx.Fail(c, err)
			return
		}
		httpx.Fail(c, httpx.NotFound("no such thing"))
	})
	r.GET("/healthz", func(c *gin.Context) {
		_, _ = lookup(c)
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	})
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL, logged
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp, body.Bytes()
}

// A request is a server span named after its route, child of the
// caller's traceparent; its statements are client spans "db SELECT" below
// it, with the module's role; the access log line carries its trace and
// span ids.
func TestStack_ServerSpanWithStatementSpansAndTracedAccessLog(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	url, logged := tracedServer(t)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	resp, body := get(t, url+"/things/42", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /things/42: %d %s", resp.StatusCode, body)
	}
	id, _ := trace.TraceIDFromHex(traceID)
	spans := ended(t, rec, id, "GET /things/:id")
	servers := telemetrytest.Named(spans, "GET /things/:id")
	if len(servers) != 1 {
		t.Fatalf("want one server span GET /things/:id in the caller's trace, got:\n%s", telemetrytest.Tree(spans))
	}
	server := servers[0]
	if server.SpanKind() != trace.SpanKindServer || server.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("server span: kind %s, parent %s; want a server span child of the caller's", server.SpanKind(), server.Parent().SpanID())
	}
	stmts := telemetrytest.Named(spans, "db SELECT")
	if len(stmts) != 1 || stmts[0].Parent().SpanID() != server.SpanContext().SpanID() {
		t.Fatalf("want one db SELECT child of the server span, got:\n%s", telemetrytest.Tree(spans))
	}
	if role, _ := telemetrytest.Attr(stmts[0], db.AttrDBRole); role != "modshop_things" {
		t.Errorf("modshop.db.role = %q, want modshop_things", role)
	}

	line := accessLine(t, logged.String(), "/things/42")
	if line[telemetry.LogTraceID] != traceID || line[telemetry.LogSpanID] != server.SpanContext().SpanID().String() {
		t.Errorf("access log line %v: want trace_id %s, span_id %s", line, traceID, server.SpanContext().SpanID())
	}
}

// A problem+json answer carries the trace id of the request's span beside
// the request id: a new trace when the caller sent none.
func TestStack_ProblemCarriesTheTraceID(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	url, _ := tracedServer(t)
	resp, body := get(t, url+"/missing/7")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /missing/7: %d %s", resp.StatusCode, body)
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	tid, _ := p["trace_id"].(string)
	id, err := trace.TraceIDFromHex(tid)
	if err != nil || p["request_id"] == "" {
		t.Fatalf("problem %s: want a trace_id beside the request_id", body)
	}
	if spans := ended(t, rec, id, "GET /missing/:id"); len(telemetrytest.Named(spans, "GET /missing/:id")) != 1 {
		t.Fatalf("trace_id %s is not the request's trace:\n%s", tid, telemetrytest.Tree(spans))
	}
}

// Probes make no span, nor do their statements.
func TestStack_ProbesAreNotTraced(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	url, _ := tracedServer(t)
	const traceID = "5bf92f3577b34da6a3ce929d0e0e4736"
	if resp, body := get(t, url+"/healthz", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %d %s", resp.StatusCode, body)
	}
	id, _ := trace.TraceIDFromHex(traceID)
	if spans := rec.Trace(id); len(spans) != 0 {
		t.Errorf("a probe made spans:\n%s", telemetrytest.Tree(spans))
	}
}

// With statement spans turned off (MODSHOP_TRACE_STATEMENTS=false reaches
// the pools as db.TraceStatements(false)) a request is its server span
// alone.
func TestStack_NoStatementSpansWhenTurnedOff(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.Install()
	url, _ := tracedServer(t, db.TraceStatements(false))
	const traceID = "6bf92f3577b34da6a3ce929d0e0e4736"
	if resp, body := get(t, url+"/things/1", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /things/1: %d %s", resp.StatusCode, body)
	}
	id, _ := trace.TraceIDFromHex(traceID)
	spans := ended(t, rec, id, "GET /things/:id")
	if len(spans) != 1 || spans[0].Name() != "GET /things/:id" {
		t.Errorf("want the server span alone, got:\n%s", telemetrytest.Tree(spans))
	}
}

// accessLine is the access log line of the request to path.
func accessLine(t *testing.T, logged, path string) map[string]any {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(logged), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" && m["path"] == path {
			return m
		}
	}
	t.Fatalf("no access log line for %s in:\n%s", path, logged)
	return nil
}

// ended waits for the span called name to end in trace id (the server
// span ends as its answer goes out), and returns the trace's spans.
func ended(t *testing.T, rec *telemetrytest.Recorder, id trace.TraceID, name string) []sdktrace.ReadOnlySpan {
	t.Helper()
	testkit.Eventually(t, "the span "+name+" of trace "+id.String(), func() bool {
		return len(telemetrytest.Named(rec.Trace(id), name)) > 0
	})
	return rec.Trace(id)
}
