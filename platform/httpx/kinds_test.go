package httpx

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/apperr"
)

// answerTo is what Errors sends when a handler fails with err.
func answerTo(t *testing.T, err error) *httptest.ResponseRecorder {
	t.Helper()
	r := gin.New()
	r.Use(Errors(slog.New(slog.NewTextHandler(io.Discard, nil))))
	r.GET("/things/:id", func(c *gin.Context) { Fail(c, err) })
	return serve(r, httptest.NewRequest(http.MethodGet, "/things/1", nil))
}

// manyFields is more field errors than an answer lists, with a repeat.
func manyFields() (domain []apperr.FieldError, http []FieldError) {
	for i := range MaxFieldErrors + 5 {
		f := fmt.Sprintf("items[%d]", i/2)
		domain = append(domain, apperr.FieldError{Field: f, Message: "is wrong"})
		http = append(http, FieldError{Field: f, Message: "is wrong"})
	}
	return domain, http
}

// The table maps each kind to exactly the problem the services used to
// build themselves: the same bytes, status and headers reach the client.
func TestProblemFor_EachKindAnswersAsTheServicesDidBefore(t *testing.T) {
	manyDomain, manyHTTP := manyFields()
	tooMany := Invalid(manyHTTP...)
	busy := NewProblem(http.StatusServiceUnavailable, "busy", "the server is busy checking other passwords; try again shortly")
	busy.RetryAfter = 3
	for _, tc := range []struct {
		name       string
		err        error
		was        *Problem // what a service returned before the kinds
		status     int
		typ        string
		retryAfter string
	}{
		{"not found", apperr.NotFound("no such order"), NotFound("no such order"), 404, "not-found", ""},
		{"conflict", apperr.Conflict("the order is confirmed and can no longer be cancelled"),
			Conflict("the order is confirmed and can no longer be cancelled"), 409, "conflict", ""},
		{"conflict naming a field", apperr.Conflict("a product with this SKU exists").WithField("sku", "is taken"),
			&Problem{Type: "https://modshop.dev/problems/conflict", Title: "Conflict", Status: 409, Detail: "a product with this SKU exists",
				Errors: []FieldError{{Field: "sku", Message: "is taken"}}}, 409, "conflict", ""},
		{"invalid", apperr.Invalid(apperr.FieldError{Field: "q", Message: "must be at most 200 characters"}, apperr.FieldError{Field: "category", Message: "must be a category slug"}),
			Invalid(FieldError{Field: "q", Message: "must be at most 200 characters"}, FieldError{Field: "category", Message: "must be a category slug"}), 422, "validation", ""},
		{"invalid beyond the bound", apperr.Invalid(manyDomain...), tooMany, 422, "validation", ""},
		{"malformed", apperr.Malformed("the cursor is not one this listing gave out"), BadRequest("the cursor is not one this listing gave out"), 400, "bad-request", ""},
		{"unauthorized", apperr.Unauthorized("the login or password is wrong"), Unauthorized("the login or password is wrong"), 401, "unauthorized", ""},
		{"forbidden", apperr.Forbidden("this needs the admin role"), Forbidden("this needs the admin role"), 403, "forbidden", ""},
		{"throttled", apperr.Throttled("too many log-in attempts from your address; try again later", 42*time.Second),
			TooManyRequests("too many log-in attempts from your address; try again later", 42), 429, "too-many-requests", "42"},
		{"throttled without a delay", apperr.Throttled("slow down", 0), TooManyRequests("slow down", 0), 429, "too-many-requests", "1"},
		{"unavailable", apperr.Unavailable("", "the service is unavailable for a moment; try again shortly", 0),
			Unavailable("the service is unavailable for a moment; try again shortly"), 503, "unavailable", "5"},
		{"unavailable with a reason and a delay", apperr.Unavailable("busy", "the server is busy checking other passwords; try again shortly", 2500*time.Millisecond),
			busy, 503, "busy", "3"},
		{"a bare kind", apperr.ErrNotFound, NewProblem(http.StatusNotFound, "not-found", ""), 404, "not-found", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range []error{tc.err, fmt.Errorf("in a use case: %w", tc.err)} {
				got, was := answerTo(t, err), answerTo(t, tc.was)
				if got.Code != tc.status || got.Code != was.Code {
					t.Fatalf("%v: status %d, want %d (as before: %d)", err, got.Code, tc.status, was.Code)
				}
				if got.Body.String() != was.Body.String() {
					t.Fatalf("%v: body\n%s\nwant as before\n%s", err, got.Body, was.Body)
				}
				for _, h := range []string{"Content-Type", "Retry-After"} {
					if got.Header().Get(h) != was.Header().Get(h) {
						t.Fatalf("%v: %s %q, want as before %q", err, h, got.Header().Get(h), was.Header().Get(h))
					}
				}
				if ra := got.Header().Get("Retry-After"); ra != tc.retryAfter {
					t.Fatalf("%v: Retry-After %q, want %q", err, ra, tc.retryAfter)
				}
				p := problemOf(t, got)
				if p["type"] != "https://modshop.dev/problems/"+tc.typ {
					t.Fatalf("%v: type %v, want %s", err, p["type"], tc.typ)
				}
			}
		})
	}
}

func TestProblemFor_ErrorsOfNoKindAreNotMapped(t *testing.T) {
	for _, err := range []error{errors.New("boom"), fmt.Errorf("wrapped: %w", io.EOF), &apperr.Error{Kind: "made up"}} {
		if p, ok := ProblemFor(err); ok {
			t.Errorf("ProblemFor(%v) = %+v, want none", err, p)
		}
	}
	w := answerTo(t, errors.New("boom"))
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "problems/internal") {
		t.Fatalf("an error of no kind: %d %s, want the 500 it always was", w.Code, w.Body)
	}
}
