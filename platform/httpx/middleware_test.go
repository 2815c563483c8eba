package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestRecover_PanickingHandlerAnswers500ProblemAndLogs(t *testing.T) {
	t.Parallel()
	log, logged := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/boom", func(c *gin.Context) {
		var m map[string]int
		m["nil map"]++ // a real bug: panics
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/boom", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", w.Code)
	}
	p := problemOf(t, w)
	if strings.Contains(w.Body.String(), "nil map") || strings.Contains(w.Body.String(), "goroutine") {
		t.Errorf("the 500 reveals the panic: %s", w.Body)
	}
	out := logged.String()
	for _, want := range []string{"panic in handler", "assignment to entry in nil map", p["request_id"].(string), "middleware_test.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("the 500 lost the security headers")
	}
}

func TestRecover_LeavesAStartedResponseAlone(t *testing.T) {
	t.Parallel()
	log, logged := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/stream", func(c *gin.Context) {
		c.String(http.StatusOK, "partial")
		panic("after writing")
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/stream", nil))
	if w.Code != http.StatusOK || w.Body.String() != "partial" {
		t.Fatalf("got %d %q: a problem was appended to a response already sent", w.Code, w.Body)
	}
	if !strings.Contains(logged.String(), "after writing") {
		t.Error("the panic was not logged")
	}
}

func TestRecover_LetsErrAbortHandlerThrough(t *testing.T) {
	t.Parallel()
	log, logged := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/abort", func(c *gin.Context) { panic(http.ErrAbortHandler) })
	defer func() {
		if rec := recover(); rec != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler passed on to net/http", rec)
		}
		if strings.Contains(logged.String(), "panic in handler") {
			t.Error("a deliberate abort was logged as a panic")
		}
	}()
	serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/abort", nil))
}

func TestLimitBody_RefusesADeclaredLargeBodyBeforeTheHandler(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	called := false
	r := engine(log, http.MethodPost, "/api/v1/users", func(c *gin.Context) { called = true })
	req := httptest.NewRequest(http.MethodPost, "/api/v1/users", strings.NewReader(strings.Repeat("a", 2<<20)))
	req.Header.Set("Content-Type", "application/json")
	w := serve(r, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("2 MB body: status %d, want 413", w.Code)
	}
	problemOf(t, w)
	if called {
		t.Error("the handler ran on a body over the limit")
	}
}

func TestLimitBody_StreamedLargeBodyIs413FromDecodeJSON(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodPost, "/api/v1/users", func(c *gin.Context) {
		var v map[string]any
		if err := DecodeJSON(c, &v); err != nil {
			Fail(c, err)
			return
		}
		c.Status(http.StatusCreated)
	})
	body := `{"a":"` + strings.Repeat("a", 2<<20) + `"}`
	req := httptest.NewRequest(http.MethodPost, "/api/v1/users", chunked{strings.NewReader(body)})
	req.ContentLength = -1 // length unknown, as with chunked encoding
	req.Header.Set("Content-Type", "application/json")
	w := serve(r, req)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("streamed 2 MB body: status %d %s, want 413", w.Code, w.Body)
	}
	problemOf(t, w)
}

func TestCrossOriginProtection_RefusesUnsafeCrossSiteRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method string
		headers      map[string]string
		refused      bool
	}{
		{"cross-site POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"same-site but other origin DELETE", http.MethodDelete, map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"old browser, foreign Origin", http.MethodPost, map[string]string{"Origin": "https://evil.example"}, true},
		{"same-origin POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin"}, false},
		{"user typed it", http.MethodPost, map[string]string{"Sec-Fetch-Site": "none"}, false},
		{"old browser, own Origin", http.MethodPost, map[string]string{"Origin": "http://shop.example"}, false},
		{"not a browser (curl)", http.MethodPost, nil, false},
		{"cross-site GET is safe", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log, _ := quietLog()
			ran := false
			r := engine(log, tt.method, "/api/v1/sessions/current", func(c *gin.Context) { ran = true; c.Status(http.StatusNoContent) })
			req := httptest.NewRequest(tt.method, "http://shop.example/api/v1/sessions/current", nil)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			w := serve(r, req)
			if tt.refused {
				if w.Code != http.StatusForbidden || ran {
					t.Fatalf("status %d, handler ran %v; want 403 before the handler", w.Code, ran)
				}
				problemOf(t, w)
				return
			}
			if w.Code != http.StatusNoContent || !ran {
				t.Fatalf("status %d, handler ran %v; want it through", w.Code, ran)
			}
		})
	}
}

func TestSecurityHeaders_AreOnEveryResponse(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/", func(c *gin.Context) { c.String(http.StatusOK, "<html>") })
	for _, path := range []string{"/", "/nowhere"} {
		w := serve(r, httptest.NewRequest(http.MethodGet, path, nil))
		h := w.Header()
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: security headers missing: %v", path, h)
		}
	}
}

func TestMetrics_CountRequestsByRoutePatternNotRawPath(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/api/v1/orders/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/metrics", m.Handler())
	for _, p := range []string{"/api/v1/orders/1", "/api/v1/orders/2", "/no/such/path"} {
		serve(r, httptest.NewRequest(http.MethodGet, p, nil))
	}
	out := serve(r, httptest.NewRequest(http.MethodGet, "/metrics", nil)).Body.String()
	for _, want := range []string{
		`modshop_http_requests_total{method="GET",route="/api/v1/orders/:id",status="200"} 2`,
		`modshop_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(out, "/api/v1/orders/1") {
		t.Error("a raw path became a label: one series per id")
	}
}
