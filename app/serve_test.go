package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("modshop exited before it was ready: %v", err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("modshop did not become ready within 60s")
}

// TestServe_InFlightRequestFinishesAfterSIGTERM sends a real SIGTERM to
// this process while a registration is half-sent: the server stops taking
// new connections but lets that request finish with its normal answer.
// Not parallel: the signal reaches the whole test process.
func TestServe_InFlightRequestFinishesAfterSIGTERM(t *testing.T) {
	dbURL := testkit.NewDatabase(t)
	addr := freeAddr(t)
	env := map[string]string{"MODSHOP_DATABASE_URL": dbURL, "MODSHOP_HTTP_ADDR": addr, "MODSHOP_LOG_LEVEL": "warn"}
	done := make(chan error, 1)
	go func() {
		done <- app.Run(context.Background(), app.Env{
			Args: []string{"serve"}, Stdout: io.Discard, Stderr: io.Discard,
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
	}()
	base := "http://" + addr
	waitReady(t, base, done)

	body := `{"username":"late_lucy","email":"lucy@example.com","password":"lucy's password"}`
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/api/v1/users", pr)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	if _, err := pw.Write([]byte(body[:20])); err != nil { // the request is now in flight
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the server read the headers

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Wait until the server refuses new connections: shutdown has begun.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := pw.Write([]byte(body[20:])); err != nil {
		t.Fatal(err)
	}
	pw.Close()

	res := <-got
	if res.err != nil || res.status != http.StatusCreated || !strings.Contains(res.body, "late_lucy") {
		t.Fatalf("in-flight request: status %d, body %s, err %v; want 201 with the new user", res.status, res.body, res.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after SIGTERM, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after SIGTERM")
	}
}

func TestPlatformEndpoints(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	api := shop.API

	for _, p := range []string{"/healthz", "/readyz"} {
		r := api.Do("GET", p, nil)
		if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"status":"ok"`)) {
			t.Errorf("%s: %d %s", p, r.Status, r.Body)
		}
	}
	api.Do("GET", "/api/v1/users/me", nil) // a 401, counted in metrics
	r := api.Do("GET", "/metrics", nil)
	for _, want := range []string{
		`modshop_http_requests_total{method="GET",route="/api/v1/users/me",status="401"} 1`,
		"modshop_http_request_duration_seconds_bucket",
		"go_goroutines",
	} {
		if !bytes.Contains(r.Body, []byte(want)) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	r = api.Do("GET", "/api/openapi.json", nil)
	if r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"/api/v1/sessions"`)) {
		t.Errorf("openapi.json: %d", r.Status)
	}

	r = api.Do("GET", "/api/v1/nothing-here", nil)
	if r.Status != http.StatusNotFound {
		t.Errorf("unknown API path: %d", r.Status)
	}
	r.Problem(t)
	r = api.Do("DELETE", "/api/v1/users/me", nil)
	if r.Status != http.StatusMethodNotAllowed {
		t.Errorf("wrong method: %d", r.Status)
	}
	r.Problem(t)

	r = api.Do("GET", "/", nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("web UI: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	for h, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'self'",
	} {
		if got := r.Header.Get(h); !strings.Contains(got, want) {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if id := r.Header.Get("X-Request-ID"); id == "" {
		t.Error("no X-Request-ID on the response")
	}
	r = api.Do("GET", "/healthz", nil, testkit.Header("X-Request-ID", "trace-me-42"))
	if r.Header.Get("X-Request-ID") != "trace-me-42" {
		t.Errorf("request id not echoed: %q", r.Header.Get("X-Request-ID"))
	}
}

func TestCommands_MigrateAndCreateAdmin(t *testing.T) {
	t.Parallel()
	dbURL := testkit.NewDatabase(t)
	env := map[string]string{"MODSHOP_DATABASE_URL": dbURL, "MODSHOP_LOG_LEVEL": "warn"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	run := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := app.Run(context.Background(), app.Env{Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: io.Discard, Lookup: lookup})
		return out.String(), err
	}
	if _, err := run("", "migrate"); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if _, err := run("", "migrate"); err != nil {
		t.Fatalf("migrate twice: %v", err)
	}
	out, err := run("root's own password\n", "users", "create", "--admin", "--username", "root", "--email", "root@example.com")
	if err != nil || !strings.Contains(out, "admin, customer") || strings.Contains(out, "password") {
		t.Fatalf("users create with piped password: %v, %q", err, out)
	}
	out, err = run("", "users", "create", "--admin", "--username", "ops", "--email", "ops@example.com")
	if err != nil {
		t.Fatalf("users create with generated password: %v", err)
	}
	var generated string
	if _, err := fmt.Sscanf(out[strings.Index(out, "password"):], "password (shown once, keep it safe): %s", &generated); err != nil || len(generated) < 20 {
		t.Fatalf("no generated password printed: %q", out)
	}

	shop := apptest.Start(t, func(c *app.Config) { c.DatabaseURL = dbURL })
	tok := shop.Login(t, "ops", generated)
	if r := shop.API.Do("GET", "/api/v1/users", nil, testkit.Bearer(tok)); r.Status != http.StatusOK {
		t.Fatalf("the created admin cannot list users: %d", r.Status)
	}
	shop.Login(t, "root", "root's own password")

	if _, err := run("", "users", "create", "--username", "x"); err == nil {
		t.Error("users create without --email succeeded")
	}
	if out, err := run("", "help"); err != nil || !strings.Contains(out, "MODSHOP_DATABASE_URL") {
		t.Errorf("help: %v %q", err, out)
	}
	env["MODSHOP_MAX_BODY_BYTES"] = "-1"
	if _, err := run("", "migrate"); err == nil || !strings.Contains(err.Error(), "MODSHOP_MAX_BODY_BYTES") {
		t.Errorf("a body limit of -1 must be refused, got %v", err)
	}
	delete(env, "MODSHOP_MAX_BODY_BYTES")
	env["MODSHOP_SESSION_TTL"] = "forever"
	if _, err := run("", "migrate"); err == nil || !strings.Contains(err.Error(), "MODSHOP_SESSION_TTL") {
		t.Errorf("a bad environment value must be reported, got %v", err)
	}
}
