package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
)

// syncBuffer is a log sink that handlers may write from any goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// engine is the platform's middleware stack around one route.
func engine(log *slog.Logger, method, path string, h gin.HandlerFunc) *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(RequestIDs(), Recover(log), SecurityHeaders(), Errors(log), LimitBody(1<<20), CrossOriginProtection())
	r.NoRoute(NoRoute)
	r.NoMethod(NoMethod)
	r.Handle(method, path, h)
	return r
}

func serve(r http.Handler, req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	return w
}

func problemOf(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != ProblemContentType {
		t.Fatalf("Content-Type = %q, want %q; body %s", ct, ProblemContentType, w.Body)
	}
	var p map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, w.Body)
	}
	if int(p["status"].(float64)) != w.Code {
		t.Errorf("body status %v differs from the response status %d", p["status"], w.Code)
	}
	return p
}

func quietLog() (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestErrors_RendersAProblemWithInstanceAndRequestID(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/things/:id", func(c *gin.Context) {
		Fail(c, Invalid(FieldError{Field: "name", Message: "is required"}))
	})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/things/42", nil)
	req.Header.Set(RequestIDHeader, "client-chosen.id_1")
	w := serve(r, req)

	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422", w.Code)
	}
	p := problemOf(t, w)
	want := map[string]any{
		"type":       "https://modshop.dev/problems/validation",
		"title":      "Unprocessable Entity",
		"instance":   "/api/v1/things/42",
		"request_id": "client-chosen.id_1",
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %v, want %v", k, p[k], v)
		}
	}
	errs, _ := p["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["field"] != "name" {
		t.Errorf("errors = %v, want one on name", p["errors"])
	}
	if got := w.Header().Get(RequestIDHeader); got != "client-chosen.id_1" {
		t.Errorf("%s header = %q, want the client's id echoed", RequestIDHeader, got)
	}
	if _, leaked := p["RetryAfter"]; leaked {
		t.Error("RetryAfter leaked into the body")
	}
}

func TestErrors_TooManyRequestsSendsRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		seconds int
		want    string
	}{{42, "42"}, {1, "1"}, {0, "1"}, {-3, "1"}}
	for _, tt := range tests {
		log, _ := quietLog()
		r := engine(log, http.MethodPost, "/api/v1/sessions", func(c *gin.Context) {
			Fail(c, TooManyRequests("too many log-in attempts", tt.seconds))
		})
		w := serve(r, httptest.NewRequest(http.MethodPost, "/api/v1/sessions", nil))
		if w.Code != http.StatusTooManyRequests {
			t.Fatalf("status = %d, want 429", w.Code)
		}
		if got := w.Header().Get("Retry-After"); got != tt.want {
			t.Errorf("TooManyRequests(%d): Retry-After = %q, want %q", tt.seconds, got, tt.want)
		}
		problemOf(t, w)
	}
}

func TestErrors_WrappedProblemKeepsItsStatus(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/orders/:id", func(c *gin.Context) {
		Fail(c, fmt.Errorf("load order: %w", NotFound("no such order")))
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/orders/7", nil))
	if w.Code != http.StatusNotFound || problemOf(t, w)["detail"] != "no such order" {
		t.Fatalf("got %d %s, want the 404 problem", w.Code, w.Body)
	}
}

func TestErrors_OtherErrorsAre500sThatRevealNothing(t *testing.T) {
	t.Parallel()
	log, logged := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/things", func(c *gin.Context) {
		Fail(c, errors.New("pq: password authentication failed for user shop_secret"))
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/things", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", w.Code)
	}
	p := problemOf(t, w)
	if strings.Contains(w.Body.String(), "shop_secret") {
		t.Errorf("the 500 reveals its cause: %s", w.Body)
	}
	if !strings.Contains(logged.String(), "shop_secret") || !strings.Contains(logged.String(), p["request_id"].(string)) {
		t.Errorf("the cause and request id are not logged: %s", logged)
	}
}

func TestRequestIDs_KeepsSaneIDsAndReplacesOthers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		sent string
		kept bool
	}{
		{"abc-123_X.y", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"has space", false},
		{"<script>alert(1)</script>", false},
		{`a"b`, false},
	}
	for _, tt := range tests {
		log, _ := quietLog()
		var seen string
		r := engine(log, http.MethodGet, "/x", func(c *gin.Context) { seen = RequestID(c); c.Status(http.StatusNoContent) })
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set(RequestIDHeader, tt.sent)
		w := serve(r, req)
		got := w.Header().Get(RequestIDHeader)
		if got != seen {
			t.Errorf("sent %q: response id %q differs from the handler's %q", tt.sent, got, seen)
		}
		if tt.kept && got != tt.sent {
			t.Errorf("sent %q: got %q, want it kept", tt.sent, got)
		}
		if !tt.kept && (got == tt.sent || len(got) != 36) {
			t.Errorf("sent %q: got %q, want a fresh UUID", tt.sent, got)
		}
	}
}

func TestNoRouteAndNoMethod_AnswerProblems(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/things", func(c *gin.Context) { c.Status(http.StatusOK) })

	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/nothing-here", nil))
	if w.Code != http.StatusNotFound || problemOf(t, w)["instance"] != "/api/v1/nothing-here" {
		t.Errorf("unknown path: %d %s", w.Code, w.Body)
	}
	w = serve(r, httptest.NewRequest(http.MethodDelete, "/api/v1/things", nil))
	if w.Code != http.StatusMethodNotAllowed || !strings.Contains(problemOf(t, w)["detail"].(string), "DELETE") {
		t.Errorf("wrong method: %d %s", w.Code, w.Body)
	}
	if allow := w.Header().Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 without an Allow header naming GET: %q", allow)
	}
}
