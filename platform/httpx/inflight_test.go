package httpx

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// heldServer serves /work, which waits until release is closed, behind an
// in-flight bound of limit; /healthz, /readyz and /metrics answer at once.
func heldServer(t *testing.T, limit int) (srv *httptest.Server, entered <-chan struct{}, release chan struct{}) {
	t.Helper()
	in := make(chan struct{}, 16)
	release = make(chan struct{})
	log := slog.New(slog.DiscardHandler)
	bound := NewInFlight(limit, 1<<20, "/healthz", "/readyz", "/metrics")
	r := gin.New()
	r.Use(RequestIDs(), Recover(log), bound.Middleware(), Errors(log))
	r.GET("/work", func(c *gin.Context) {
		in <- struct{}{}
		<-release
		c.String(http.StatusOK, "done")
	})
	r.GET("/panic", func(c *gin.Context) { panic("boom") })
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		r.GET(p, func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	}
	srv = httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, in, release
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestInFlight_BeyondTheBoundIs503AtOnceButProbesStillAnswer(t *testing.T) {
	t.Parallel()
	srv, entered, release := heldServer(t, 2)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if resp, body := get(t, srv.URL+"/work"); resp.StatusCode != http.StatusOK {
				t.Errorf("a request within the bound: %d %s", resp.StatusCode, body)
			}
		})
	}
	<-entered
	<-entered // both held: the bound is reached

	resp, body := get(t, srv.URL+"/work") // answered while the others are still held: nothing queues
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != ProblemContentType {
		t.Fatalf("a request beyond the bound: %d Retry-After %q %s, want 503 problem with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := get(t, srv.URL+p); resp.StatusCode != http.StatusOK {
			t.Errorf("%s while the bound is reached: %d %s; operators must still see the server", p, resp.StatusCode, body)
		}
	}
	close(release)
	wg.Wait()
	if resp, body := get(t, srv.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after: %d %s", resp.StatusCode, body)
	}
}

func TestInFlight_ARequestThatEndsGivesItsPlaceBackEvenWhenItPanics(t *testing.T) {
	t.Parallel()
	srv, entered, release := heldServer(t, 1)
	close(release)
	for range 3 {
		if resp, _ := get(t, srv.URL+"/panic"); resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("panic: %d", resp.StatusCode)
		}
	}
	if resp, body := get(t, srv.URL+"/work"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after three panics with a bound of one: %d %s", resp.StatusCode, body)
	}
	<-entered
}

func TestSizeInFlight(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		name   string
		memory uint64
		body   int
		want   int
	}{
		{"memory unknown", 0, mib, 256},
		{"24 GiB, 1 MiB bodies: the ceiling", 24 << 30, mib, 1024},
		{"2 GiB, 1 MiB bodies: a quarter at 4 MiB each", 2 << 30, mib, 128},
		{"1 GiB, 1 MiB bodies", 1 << 30, mib, 64},
		{"2 GiB, 64 MiB bodies: the floor", 2 << 30, 64 * mib, 16},
	}
	for _, tt := range tests {
		if got := SizeInFlight(tt.memory, tt.body); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}
