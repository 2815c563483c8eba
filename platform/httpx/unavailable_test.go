package httpx

import (
	"context"
	"database/sql/driver"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
)

// An outage is not a bug: errors that say the database is away (or did not
// answer in time) are 503s with Retry-After, logged as warnings, and the
// answer reveals nothing of the cause. The errors themselves are checked
// against a real PostgreSQL in platform/db; here it is their rendering.
func TestErrors_DatabaseUnavailableIs503WithRetryAfter(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		fmt.Errorf("list products: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command secret_host"}),
		fmt.Errorf("look up session on secret_host: %w", driver.ErrBadConn),
		fmt.Errorf("search: %w", &pgconn.PgError{Severity: "ERROR", Code: "57014", Message: "canceling statement due to statement timeout secret_host"}),
		fmt.Errorf("search: %w secret_host", context.DeadlineExceeded),
	} {
		log, logged := quietLog()
		r := engine(log, http.MethodGet, "/api/v1/products", func(c *gin.Context) { Fail(c, err) })
		w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/products", nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%v: status %d, want 503", err, w.Code)
			continue
		}
		p := problemOf(t, w)
		if p["type"] != "https://modshop.dev/problems/unavailable" {
			t.Errorf("%v: type %v", err, p["type"])
		}
		if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("%v: Retry-After = %q, want a number of seconds", err, ra)
		}
		if strings.Contains(w.Body.String(), "secret_host") {
			t.Errorf("%v: the answer reveals the cause: %s", err, w.Body)
		}
		if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "secret_host") {
			t.Errorf("%v: not logged as a warning with its cause: %s", err, logged)
		}
		if strings.Contains(logged.String(), "level=ERROR") {
			t.Errorf("%v: an outage logged as an error: %s", err, logged)
		}
	}
}

// Errors that are not the database being away stay 500s.
func TestErrors_ContextCancelledIsNotAnOutage(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/products", func(c *gin.Context) {
		Fail(c, fmt.Errorf("list: %w", context.Canceled))
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/products", nil))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", w.Code)
	}
}

// Every 503 tells the client when to come back, also one a module built
// itself without saying.
func TestWriteProblem_Every503CarriesRetryAfter(t *testing.T) {
	t.Parallel()
	log, _ := quietLog()
	r := engine(log, http.MethodGet, "/api/v1/orders", func(c *gin.Context) {
		Fail(c, NewProblem(http.StatusServiceUnavailable, "auth-unavailable", "sessions cannot be checked right now"))
	})
	w := serve(r, httptest.NewRequest(http.MethodGet, "/api/v1/orders", nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("got %d with Retry-After %q, want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	problemOf(t, w)
}

// The access log reports a 503 as a warning: the service is away for a
// moment, nothing is broken. Other 5xx stay errors.
func TestAccessLog_503IsAWarningOther5xxAreErrors(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]string{503: "level=WARN", 500: "level=ERROR", 404: "level=INFO"} {
		log, logged := quietLog()
		r := gin.New()
		r.Use(AccessLog(log))
		r.GET("/x", func(c *gin.Context) { c.Status(status) })
		serve(r, httptest.NewRequest(http.MethodGet, "/x", nil))
		if !strings.Contains(logged.String(), want) {
			t.Errorf("status %d logged as %s, want %s", status, logged, want)
		}
	}
}
