// Package httpx holds the HTTP plumbing every module shares: problem+json
// errors (RFC 9457), strict JSON decoding, request ids, access logs, panic
// recovery, body limits, security headers and Prometheus request metrics.
// It knows nothing about shops.
package httpx

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry"
)

// ProblemContentType is the media type of every error body.
const ProblemContentType = "application/problem+json"

// FieldError names one invalid input field and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem detail. It is also an error, so handlers
// return it like any other error and the central renderer writes it.
type Problem struct {
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Status     int          `json:"status"`
	Detail     string       `json:"detail,omitempty"`
	Instance   string       `json:"instance,omitempty"`
	RequestID  string       `json:"request_id,omitempty"`
	TraceID    string       `json:"trace_id,omitempty"`
	Errors     []FieldError `json:"errors,omitempty"`
	RetryAfter int          `json:"-"` // seconds; sent as the Retry-After header when > 0
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

// NewProblem builds a problem whose type is a stable, documented identifier.
func NewProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: "https://modshop.dev/problems/" + typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

// BadRequest is a 400 for a request that cannot be read at all.
func BadRequest(detail string) *Problem {
	return NewProblem(http.StatusBadRequest, "bad-request", detail)
}

// Unauthorized is a 401: no valid credentials.
func Unauthorized(detail string) *Problem {
	return NewProblem(http.StatusUnauthorized, "unauthorized", detail)
}

// Forbidden is a 403: valid credentials without the right to do this.
func Forbidden(detail string) *Problem { return NewProblem(http.StatusForbidden, "forbidden", detail) }

// NotFound is a 404. Someone else's resource is reported this way too.
func NotFound(detail string) *Problem { return NewProblem(http.StatusNotFound, "not-found", detail) }

// Conflict is a 409: the request clashes with the current state.
func Conflict(detail string) *Problem { return NewProblem(http.StatusConflict, "conflict", detail) }

// MaxFieldErrors is the most field errors a 422 lists: enough for any
// form, and the answer stays small whatever the body held (a list of
// 300,000 bad lines must not become 300,000 errors).
const MaxFieldErrors = 20

// Invalid is a 422 listing the invalid fields: each distinct error once,
// at most MaxFieldErrors of them (the first), the detail saying when more
// were left out.
func Invalid(errs ...FieldError) *Problem {
	p := NewProblem(http.StatusUnprocessableEntity, "validation", "the request has invalid fields")
	var more bool
	p.Errors, more = firstFieldErrors(errs)
	if more {
		p.Detail = fmt.Sprintf("the request has invalid fields; the first %d are listed, more are not", len(p.Errors))
	}
	return p
}

// firstFieldErrors keeps the first MaxFieldErrors distinct errors of errs,
// and reports whether others were left out.
func firstFieldErrors(errs []FieldError) (kept []FieldError, more bool) {
	for _, e := range errs {
		switch {
		case slices.Contains(kept, e):
		case len(kept) == MaxFieldErrors:
			return kept, true
		default:
			kept = append(kept, e)
		}
	}
	return kept, false
}

// TooManyRequests is a 429 that tells the client when to come back.
func TooManyRequests(detail string, retryAfterSeconds int) *Problem {
	p := NewProblem(http.StatusTooManyRequests, "too-many-requests", detail)
	if retryAfterSeconds < 1 {
		retryAfterSeconds = 1
	}
	p.RetryAfter = retryAfterSeconds
	return p
}

// RetryAfterUnavailable is the Retry-After, in seconds, of a 503 that does
// not set its own: about the time a pool needs to find a database that
// came back.
const RetryAfterUnavailable = 5

// Unavailable is a 503: the service cannot answer this moment (its
// database is away, or did not answer in time), and will again.
func Unavailable(detail string) *Problem {
	p := NewProblem(http.StatusServiceUnavailable, "unavailable", detail)
	p.RetryAfter = RetryAfterUnavailable
	return p
}

// Fail records err on the request and stops the handler chain; the Errors
// middleware renders it. Handlers call it and return.
func Fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// Errors is the one place that turns errors into problem+json. A *Problem
// is sent as it is; a use case's failure of a kind (platform/apperr) as
// ProblemFor maps it. The database being away or too slow (db.IsUnavailable)
// is a 503 with Retry-After, logged as a warning: it is an outage, not a
// bug, and the client may simply come back. Anything else is logged as an
// error and answered with a 500. Neither reveals anything about the cause.
func Errors(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		WriteProblem(c, answer(c, log, c.Errors.Last().Err))
	}
}

// answer is the problem Errors sends for err, logging what needs it.
func answer(c *gin.Context, log *slog.Logger, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	if p, ok := ProblemFor(err); ok {
		return p
	}
	if db.IsUnavailable(err) {
		log.WarnContext(c.Request.Context(), "request failed: database unavailable",
			"err", err, "method", c.Request.Method, "path", c.FullPath(), "request_id", RequestID(c))
		return Unavailable("the service is unavailable for a moment; try again shortly")
	}
	log.ErrorContext(c.Request.Context(), "request failed",
		"err", err, "method", c.Request.Method, "path", c.FullPath(), "request_id", RequestID(c))
	return NewProblem(http.StatusInternalServerError, "internal", "something went wrong on our side; the request id helps us find it")
}

// WriteProblem writes p as the response, filling in instance, request id
// and, when the request is traced, its trace id.
func WriteProblem(c *gin.Context, p *Problem) {
	out := *p
	if out.Title == "" {
		out.Title = http.StatusText(out.Status)
	}
	if out.Type == "" {
		out.Type = "about:blank"
	}
	out.Instance = c.Request.URL.Path
	out.RequestID = RequestID(c)
	out.TraceID = telemetry.TraceID(c.Request.Context())
	if len(out.Errors) > MaxFieldErrors { // built by hand rather than by Invalid
		out.Errors = out.Errors[:MaxFieldErrors]
	}
	if out.Status == http.StatusServiceUnavailable && out.RetryAfter <= 0 {
		out.RetryAfter = RetryAfterUnavailable // every 503 says when to come back
	}
	if out.RetryAfter > 0 {
		c.Header("Retry-After", fmt.Sprint(out.RetryAfter))
	}
	c.Header("Content-Type", ProblemContentType)
	c.Status(out.Status)
	c.Render(-1, problemRender{&out})
}

// NoRoute answers unknown paths with a 404 problem.
func NoRoute(c *gin.Context) { WriteProblem(c, NotFound("no such endpoint")) }

// NoMethod answers a known path with the wrong method.
func NoMethod(c *gin.Context) {
	WriteProblem(c, NewProblem(http.StatusMethodNotAllowed, "method-not-allowed", "this endpoint does not accept "+c.Request.Method))
}
