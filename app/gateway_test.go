package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
)

// seen is what an upstream behind the gateway received.
type seen struct {
	Upstream  string
	Method    string
	Path      string
	Query     string
	Host      string
	Body      string
	RequestID string
	For       string
	Proto     string
	FwdHost   string
}

// echoUpstream answers every request with what it received, and sets the
// headers the gateway sets too, as a module process does.
func echoUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Request-ID", r.Header.Get("X-Request-ID"))
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(seen{
			Upstream: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Body: string(body),
			RequestID: r.Header.Get("X-Request-ID"), For: r.Header.Get("X-Forwarded-For"),
			Proto: r.Header.Get("X-Forwarded-Proto"), FwdHost: r.Header.Get("X-Forwarded-Host"),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// startGateway runs `modshop gateway` in this process until the test ends
// and returns its base URL.
func startGateway(t *testing.T, args ...string) string {
	t.Helper()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Env{Args: append([]string{"gateway", "--listen", addr}, args...), Stdout: io.Discard, Stderr: io.Discard,
			Lookup: func(string) (string, bool) { return "", false }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway stopped with %v", err)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			done <- nil // for the cleanup, which waits for the gateway to end
			t.Fatalf("gateway exited at start: %v", err)
		default:
		}
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return base
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway did not listen within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func do(t *testing.T, method, url, body string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

func TestGateway_RoutesByPathPrefixAndSaysWhoAsked(t *testing.T) {
	t.Parallel()
	users, admin := echoUpstream(t, "users"), echoUpstream(t, "admin")
	gw := startGateway(t, "--route", "/api/v1/users="+users.URL, "--route", "/api/v1/users/admin/="+admin.URL)
	gwHost := strings.TrimPrefix(gw, "http://")

	resp, raw := do(t, "POST", gw+"/api/v1/users/me?x=1", `{"a":1}`, map[string]string{
		"X-Request-ID": "trace-7", "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
	})
	var got seen
	if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("proxied request: %d %s", resp.StatusCode, raw)
	}
	want := seen{Upstream: "users", Method: "POST", Path: "/api/v1/users/me", Query: "x=1", Host: gwHost, Body: `{"a":1}`,
		RequestID: "trace-7", For: "127.0.0.1", Proto: "http", FwdHost: gwHost}
	if got != want {
		t.Fatalf("the upstream received\n%+v\nwant (an untrusted client's X-Forwarded-* dropped)\n%+v", got, want)
	}
	if ids := resp.Header.Values("X-Request-ID"); len(ids) != 1 || ids[0] != "trace-7" {
		t.Errorf("X-Request-ID on the answer: %q, want once trace-7", ids)
	}
	if csp := resp.Header.Values("Content-Security-Policy"); len(csp) != 1 || !strings.Contains(csp[0], "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy on the answer: %q, want the shop's, once", csp)
	}

	_, raw = do(t, "GET", gw+"/api/v1/users/admin/7", "", nil)
	if err := json.Unmarshal(raw, &got); err != nil || got.Upstream != "admin" {
		t.Errorf("the longest prefix wins: %s", raw)
	}
	_, raw = do(t, "GET", gw+"/api/v1/users", "", nil)
	if err := json.Unmarshal(raw, &got); err != nil || got.Upstream != "users" || got.RequestID == "" {
		t.Errorf("the prefix itself, with a request id made up by the gateway: %s", raw)
	}
	resp, raw = do(t, "GET", gw+"/api/v1/usersx", "", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("a path that only starts like a prefix: %d %s, want a 404 problem", resp.StatusCode, raw)
	}
}

func TestGateway_BelievesForwardedHeadersOfTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	up := echoUpstream(t, "orders")
	gw := startGateway(t, "--route", "/api/v1/orders="+up.URL, "--trusted-proxies", "127.0.0.0/8")
	_, raw := do(t, "GET", gw+"/api/v1/orders", "", map[string]string{
		"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example",
	})
	var got seen
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if got.For != "203.0.113.9, 127.0.0.1" || got.Proto != "https" || got.FwdHost != "shop.example" {
		t.Fatalf("behind a trusted proxy the upstream saw For=%q Proto=%q Host=%q, want the client's chain extended", got.For, got.Proto, got.FwdHost)
	}
}

func TestGateway_UpstreamDownIs502ProblemAndNotReady(t *testing.T) {
	t.Parallel()
	up := echoUpstream(t, "products")
	dead := "http://" + freeAddr(t) // nobody listens there
	gw := startGateway(t, "--route", "/api/v1/products="+up.URL, "--route", "/api/v1/orders="+dead)

	resp, raw := do(t, "POST", gw+"/api/v1/orders", `{}`, nil)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("upstream down: %d %q %s, want a 502 problem", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	var p struct {
		Status    int    `json:"status"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.Status != 502 || p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-ID") {
		t.Fatalf("502 problem: %s (X-Request-ID %q)", raw, resp.Header.Get("X-Request-ID"))
	}
	if strings.Contains(p.Detail, dead) {
		t.Errorf("the problem tells clients an internal address: %s", p.Detail)
	}
	resp, raw = do(t, "GET", gw+"/readyz", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(raw), "/api/v1/orders") || strings.Contains(string(raw), "/api/v1/products") {
		t.Fatalf("readyz with one upstream down: %d %s, want 503 naming only /api/v1/orders", resp.StatusCode, raw)
	}
	if resp, raw := do(t, "GET", gw+"/api/v1/products", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the other upstream: %d %s", resp.StatusCode, raw)
	}
	metrics, body := do(t, "GET", gw+"/metrics", "", nil)
	for _, want := range []string{
		`modshop_gateway_requests_total{prefix="/api/v1/orders",status="502"} 1`,
		`modshop_gateway_requests_total{prefix="/api/v1/products",status="200"} 1`,
	} {
		if metrics.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestGateway_ServesWebUIAndTheWholeAPIDocument(t *testing.T) {
	t.Parallel()
	up := echoUpstream(t, "users")
	gw := startGateway(t, "--route", "/api/v1/users="+up.URL)
	for _, page := range []string{"/", "/orders/123", "/staff/bus"} {
		resp, raw := do(t, "GET", gw+page, "", nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(raw), "<html") {
			t.Errorf("page %s: %d %q", page, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("page %s without the shop's CSP: %q", page, csp)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("page %s without the shop's security headers: %v", page, resp.Header)
		}
	}
	resp, raw := do(t, "GET", gw+"/api/openapi.json", "", nil)
	for _, path := range []string{"/api/v1/users", "/api/v1/products", "/api/v1/orders", "/api/v1/payments", "/api/v1/admin/bus"} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"`+path+`"`) {
			t.Errorf("the gateway's openapi.json lacks %s", path)
		}
	}
	resp, _ = do(t, "GET", gw+"/healthz", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %d", resp.StatusCode)
	}
	resp, raw = do(t, "GET", gw+"/readyz", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"status":"ok"`) {
		t.Errorf("readyz with every upstream up: %d %s", resp.StatusCode, raw)
	}
	resp, raw = do(t, "GET", gw+"/api/v1/nothing", "", nil)
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("an API path no route takes: %d %s", resp.StatusCode, raw)
	}
}

func TestGateway_BadSettingsAreRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "no routes"},
		{[]string{"--route", "/api/v1/orders"}, nil, "PREFIX=URL"},
		{[]string{"--route", "api/v1/orders=http://127.0.0.1:1"}, nil, "starting with /"},
		{[]string{"--route", "/api/v1/orders=127.0.0.1:8083"}, nil, "http://"},
		{[]string{"--route", "/a=http://127.0.0.1:1", "--route", "/a/=http://127.0.0.1:2"}, nil, "routed twice"},
		{nil, map[string]string{"MODSHOP_GATEWAY_ROUTES": "/a=http://127.0.0.1:1, /b"}, "PREFIX=URL"},
		{[]string{"--route", "/a=http://127.0.0.1:1", "--trusted-proxies", "my-proxy"}, nil, "MODSHOP_TRUSTED_PROXIES"},
	}
	for _, c := range cases {
		err := app.Run(context.Background(), app.Env{Args: append([]string{"gateway", "--listen", "127.0.0.1:0"}, c.args...),
			Stdout: io.Discard, Stderr: io.Discard, Lookup: func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("gateway %v %v: %v, want an error saying %q", c.args, c.env, err, c.want)
		}
	}
}

// TestGateway_SlashTakesWhatNoOtherRouteDoes: moving one module out of a
// running shop is two routes, / to the shop and the module's prefix to its
// new process; the gateway's own endpoints stay its own.
func TestGateway_SlashTakesWhatNoOtherRouteDoes(t *testing.T) {
	t.Parallel()
	shop, payments := echoUpstream(t, "shop"), echoUpstream(t, "payments")
	gw := startGateway(t, "--route", "/="+shop.URL, "--route", "/api/v1/payments="+payments.URL)
	for path, want := range map[string]string{"/orders/1": "shop", "/api/v1/orders": "shop", "/api/v1/payments": "payments"} {
		_, raw := do(t, "GET", gw+path, "", nil)
		var got seen
		if err := json.Unmarshal(raw, &got); err != nil || got.Upstream != want || got.Path != path {
			t.Errorf("%s went to %s (%s), want %s", path, got.Upstream, raw, want)
		}
	}
	_, raw := do(t, "GET", gw+"/api/openapi.json", "", nil)
	if !strings.Contains(string(raw), `"/api/v1/payments"`) {
		t.Errorf("/api/openapi.json is not the gateway's own: %.200s", raw)
	}
	_, raw = do(t, "GET", gw+"/healthz", "", nil)
	if string(raw) != `{"status":"ok"}` {
		t.Errorf("/healthz is not the gateway's own: %s", raw)
	}
}
