package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry/telemetrytest"
	"github.com/modshop/modshop/platform/testkit"
)

// The tests below run `modshop serve` and `modshop gateway` in a process
// of their own (this test binary, run again), exporting to a real OTLP
// receiver: telemetry.Setup installs the process's global tracer
// provider, which must not replace the recorder other tests of this
// binary share. The receiver is sent the spans when the process stops
// (its exporter batches them for 5 seconds): what a process flushes on
// exit.

const childEnv = "MODSHOP_TEST_TRACED_CHILD"

// TestTracedProcess_Child is the process the tests below start: it runs
// modshop with the arguments in MODSHOP_TEST_TRACED_CHILD (separated by
// spaces) and the environment, until SIGTERM.
func TestTracedProcess_Child(t *testing.T) {
	args := os.Getenv(childEnv)
	if args == "" {
		t.Skip("run by the tests of traced processes")
	}
	err := app.Run(context.Background(), app.Env{Args: strings.Fields(args), Stdout: os.Stderr, Stderr: os.Stderr, Lookup: os.LookupEnv})
	if err != nil {
		t.Fatal(err)
	}
}

// tracedProcess is a modshop process run by startTraced.
type tracedProcess struct {
	URL    string
	cmd    *exec.Cmd
	stderr *syncBuffer // embedded_test.go
	done   chan error
}

// startTraced runs modshop with args (listening on addr) and env in a
// process of its own, and waits until it answers /healthz.
func startTraced(t *testing.T, addr string, args string, env ...string) *tracedProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTracedProcess_Child$") // #nosec G204 -- this test binary
	cmd.Env = append(os.Environ(), append(env, childEnv+"="+args)...)
	p := &tracedProcess{URL: "http://" + addr, cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	testkit.Eventually(t, "modshop "+args+" to answer", func() bool {
		select {
		case err := <-p.done:
			t.Fatalf("modshop %s exited at start: %v\n%s", args, err, p.stderr)
		default:
		}
		resp, err := http.Get(p.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// stop sends SIGTERM and waits for the process to end; it returns what
// the process logged.
func (p *tracedProcess) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("the process ended with %v:\n%s", err, p.stderr)
		}
	case <-time.After(testkit.Patience):
		t.Fatalf("the process did not stop on SIGTERM:\n%s", p.stderr)
	}
	return p.stderr.String()
}

func tracedGet(t *testing.T, url, traceparent string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

func received(r *telemetrytest.Receiver, traceID, name string) []telemetrytest.ReceivedSpan {
	var out []telemetrytest.ReceivedSpan
	for _, s := range r.Trace(traceID) {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

func describe(spans []telemetrytest.ReceivedSpan) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString(s.Service + " " + s.Name + " " + s.SpanID + " parent " + s.ParentID + " role " + s.Attrs["modshop.db.role"] + "\n")
	}
	return b.String()
}

// `modshop serve` of some modules names itself after them, in the order
// --modules gives, exports its spans (server spans, statement spans with
// the module's role) when it stops, answers problems with the trace id
// and logs the trace id on its access log lines.
func TestServe_ExportsItsTracesUnderItsNameAndFlushesOnExit(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.NewReceiver()
	t.Cleanup(rec.Close)
	addr := freeAddr(t)
	p := startTraced(t, addr, "serve --modules product,payment",
		"MODSHOP_HTTP_ADDR="+addr, "MODSHOP_DATABASE_URL="+testkit.NewDatabase(t), "MODSHOP_USER_URL=http://127.0.0.1:1",
		"MODSHOP_LOG_FORMAT=json", "MODSHOP_DB_MAX_CONNS=2", "OTEL_EXPORTER_OTLP_ENDPOINT="+rec.URL)

	const listTrace = "8bf92f3577b34da6a3ce929d0e0e4736"
	if status, body := tracedGet(t, p.URL+"/api/v1/products", "00-"+listTrace+"-00f067aa0ba902b7-01"); status != http.StatusOK {
		t.Fatalf("GET /api/v1/products: %d %s", status, body)
	}
	status, body := tracedGet(t, p.URL+"/api/v1/products/00000000-0000-4000-8000-000000000000", "")
	var problem struct {
		TraceID   string `json:"trace_id"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(body, &problem); err != nil || status != http.StatusNotFound || problem.TraceID == "" || problem.RequestID == "" {
		t.Fatalf("GET of a missing product: %d %s; want a 404 problem with trace_id and request_id", status, body)
	}
	logged := p.stop(t)

	list := rec.Trace(listTrace)
	servers := received(rec, listTrace, "GET /api/v1/products")
	if len(servers) != 1 || servers[0].Service != "modshop-product+payment" || servers[0].ParentID != "00f067aa0ba902b7" {
		t.Fatalf("want the server span GET /api/v1/products of modshop-product+payment, child of the caller's; the receiver has:\n%s", describe(list))
	}
	var stmts int
	for _, s := range list {
		if strings.HasPrefix(s.Name, "db ") && s.Attrs["modshop.db.role"] == db.RoleFor(product.Schema) && s.Attrs["db.system.name"] == "postgresql" {
			stmts++
		}
	}
	if stmts == 0 {
		t.Errorf("no statement span with the product module's role:\n%s", describe(list))
	}
	if got := received(rec, problem.TraceID, "GET /api/v1/products/:id"); len(got) != 1 {
		t.Errorf("the problem's trace_id %s is not its request's trace:\n%s", problem.TraceID, describe(rec.Trace(problem.TraceID)))
	}
	if !accessLogged(logged, "/api/v1/products", listTrace) {
		t.Errorf("no access log line of /api/v1/products with trace_id %s:\n%s", listTrace, logged)
	}
}

// MODSHOP_TRACE_STATEMENTS=false: requests are traced, statements not.
func TestServe_TraceStatementsFalseMakesNoStatementSpans(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.NewReceiver()
	t.Cleanup(rec.Close)
	addr := freeAddr(t)
	p := startTraced(t, addr, "serve --modules product",
		"MODSHOP_HTTP_ADDR="+addr, "MODSHOP_DATABASE_URL="+testkit.NewDatabase(t), "MODSHOP_USER_URL=http://127.0.0.1:1",
		"MODSHOP_DB_MAX_CONNS=2", "MODSHOP_TRACE_STATEMENTS=false", "OTEL_EXPORTER_OTLP_ENDPOINT="+rec.URL)
	const listTrace = "9bf92f3577b34da6a3ce929d0e0e4736"
	if status, body := tracedGet(t, p.URL+"/api/v1/products", "00-"+listTrace+"-00f067aa0ba902b7-01"); status != http.StatusOK {
		t.Fatalf("GET /api/v1/products: %d %s", status, body)
	}
	p.stop(t)
	spans := rec.Trace(listTrace)
	if len(spans) != 1 || spans[0].Name != "GET /api/v1/products" || spans[0].Service != "modshop-product" {
		t.Errorf("want the server span of modshop-product alone, the receiver has:\n%s", describe(spans))
	}
}

// `modshop gateway` exports its server and proxy spans as
// modshop-gateway, and the process behind it receives the trace.
func TestGatewayProcess_ExportsAsModshopGateway(t *testing.T) {
	t.Parallel()
	rec := telemetrytest.NewReceiver()
	t.Cleanup(rec.Close)
	var mu sync.Mutex
	var sent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent = r.Header.Get("traceparent")
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	t.Cleanup(upstream.Close)
	addr := freeAddr(t)
	p := startTraced(t, addr, "gateway --listen "+addr+" --route /api/v1/orders="+upstream.URL,
		"MODSHOP_LOG_FORMAT=json", "OTEL_EXPORTER_OTLP_ENDPOINT="+rec.URL)
	const traceID = "abf92f3577b34da6a3ce929d0e0e4736"
	if status, body := tracedGet(t, p.URL+"/api/v1/orders/x", "00-"+traceID+"-00f067aa0ba902b7-01"); status != http.StatusOK {
		t.Fatalf("through the gateway: %d %s", status, body)
	}
	logged := p.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(sent, traceID) {
		t.Errorf("the process behind received traceparent %q, want trace %s", sent, traceID)
	}
	spans := rec.Trace(traceID)
	server, proxy := received(rec, traceID, "GET /api/v1/orders"), received(rec, traceID, "gateway proxy GET")
	if len(server) != 1 || len(proxy) != 1 || server[0].Service != "modshop-gateway" || proxy[0].Service != "modshop-gateway" ||
		proxy[0].ParentID != server[0].SpanID || !strings.Contains(sent, proxy[0].SpanID) {
		t.Errorf("want modshop-gateway's server span and its proxy span, parent of the upstream's; the receiver has:\n%s", describe(spans))
	}
	if !accessLogged(logged, "/api/v1/orders/x", traceID) {
		t.Errorf("no access log line with trace_id %s:\n%s", traceID, logged)
	}
}

// accessLogged reports whether logged (JSON lines) has the access log
// line of path with trace_id traceID.
func accessLogged(logged, path, traceID string) bool {
	for _, l := range strings.Split(logged, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "http request" && m["path"] == path && m["trace_id"] == traceID {
			return true
		}
	}
	return false
}
