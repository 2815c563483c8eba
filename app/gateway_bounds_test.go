package app_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingUpstream counts what reaches it: requests served (their whole
// body read), /readyz probes, connections, and requests at once. /slow
// waits until release is closed.
type countingUpstream struct {
	*httptest.Server
	requests, probes, conns atomic.Int32
	mu                      sync.Mutex
	now, most               int
	release                 chan struct{}
}

func newCountingUpstream(t *testing.T) *countingUpstream {
	t.Helper()
	u := &countingUpstream{release: make(chan struct{})}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			u.probes.Add(1)
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return // a body cut short: the request is not served
		}
		u.requests.Add(1)
		if r.URL.Path == "/api/v1/slow" {
			u.mu.Lock()
			u.now++
			u.most = max(u.most, u.now)
			u.mu.Unlock()
			<-u.release
			u.mu.Lock()
			u.now--
			u.mu.Unlock()
		}
		w.Write([]byte(`{}`))
	}))
	u.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	t.Cleanup(u.let) // a failed test must not leave handlers waiting
	return u
}

func (u *countingUpstream) let() {
	select {
	case <-u.release:
	default:
		close(u.release)
	}
}

func (u *countingUpstream) atOnce() (now, most int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.now, u.most
}

// waitUntil polls cond until it holds, failing the test after a while.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gatewayGauge reads one unlabelled gauge from the gateway's /metrics.
func gatewayGauge(t *testing.T, gw, name string) string {
	t.Helper()
	_, body := do(t, "GET", gw+"/metrics", "", nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func TestGateway_RefusesABodyOverTheLimitWithoutSendingItOn(t *testing.T) {
	t.Parallel()
	up := newCountingUpstream(t)
	gw := startGateway(t, "--route", "/api/v1="+up.URL, "--max-body-bytes", "2048")
	big := bytes.Repeat([]byte("x"), 4096)

	resp, raw := do(t, "POST", gw+"/api/v1/orders", string(big), map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("a 4 KiB body with a 2 KiB limit: %d %s, want a 413 problem", resp.StatusCode, raw)
	}
	// Without a length: the gateway finds out while it sends the body on.
	req, _ := http.NewRequest("POST", gw+"/api/v1/orders", io.MultiReader(bytes.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	chunked, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(chunked.Body)
	chunked.Body.Close()
	if chunked.StatusCode != http.StatusRequestEntityTooLarge || chunked.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("a 4 KiB body sent chunked, with a 2 KiB limit: %d %s, want a 413 problem", chunked.StatusCode, raw)
	}
	if n := up.requests.Load(); n != 0 {
		t.Errorf("the upstream received the whole of %d bodies over the limit", n)
	}
	if resp, raw := do(t, "POST", gw+"/api/v1/orders", `{"a":1}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("a small body: %d %s", resp.StatusCode, raw)
	}
}

func TestGateway_ReadyzAsksTheUpstreamsAtMostAboutOnceASecond(t *testing.T) {
	t.Parallel()
	up := newCountingUpstream(t)
	gw := startGateway(t, "--route", "/api/v1/products="+up.URL, "--route", "/api/v1/orders="+up.URL)
	start := time.Now()
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if status, body := plainGet(t, gw+"/readyz"); status != http.StatusOK {
				t.Errorf("readyz: %d %s", status, body)
			}
		})
	}
	wg.Wait()
	// At most one probe a second, and one more for the second it started in.
	if n, most := up.probes.Load(), int32(time.Since(start)/time.Second)+2; n > most {
		t.Fatalf("40 anonymous /readyz calls probed the upstream %d times in %v, want at most %d",
			n, time.Since(start).Round(time.Millisecond), most)
	}
}

func TestGateway_OpensAtMostTheBoundOfConnectionsToAnUpstream(t *testing.T) {
	t.Parallel()
	const bound, sent = 2, 6
	up := newCountingUpstream(t)
	gw := startGateway(t, "--route", "/api/v1="+up.URL, "--max-conns-per-upstream", "2")
	var wg sync.WaitGroup
	for range sent {
		wg.Go(func() {
			if status, body := plainGet(t, gw+"/api/v1/slow"); status != http.StatusOK {
				t.Errorf("a request waiting for a connection: %d %s", status, body)
			}
		})
	}
	waitUntil(t, "every request in the gateway and the upstream busy", func() bool {
		now, _ := up.atOnce()
		return gatewayGauge(t, gw, "modshop_http_requests_in_flight") == "6" && now >= bound
	})
	up.let()
	wg.Wait()
	if _, most := up.atOnce(); most > bound || up.conns.Load() > bound {
		t.Fatalf("%d requests at once through the gateway reached the upstream %d at once on %d connections, want at most %d",
			sent, most, up.conns.Load(), bound)
	}
	if n := up.requests.Load(); n != sent {
		t.Fatalf("the upstream served %d of %d requests", n, sent)
	}
}

func TestGateway_BeyondItsBoundIs503AtOnceAndProbesStillAnswer(t *testing.T) {
	t.Parallel()
	up := newCountingUpstream(t)
	gw := startGateway(t, "--route", "/api/v1="+up.URL, "--max-requests-in-flight", "2")
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if status, body := plainGet(t, gw+"/api/v1/slow"); status != http.StatusOK {
				t.Errorf("a held request: %d %s", status, body)
			}
		})
	}
	waitUntil(t, "two requests held at the upstream", func() bool { now, _ := up.atOnce(); return now == 2 })
	resp, raw := do(t, "GET", gw+"/api/v1/other", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("beyond the bound: %d Retry-After %q %s, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, raw := do(t, "GET", gw+p, "", nil); resp.StatusCode != http.StatusOK {
			t.Errorf("%s at the bound: %d %.200s", p, resp.StatusCode, raw)
		}
	}
	up.let()
	wg.Wait()
}
