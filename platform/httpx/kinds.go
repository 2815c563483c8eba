package httpx

import (
	"errors"
	"net/http"
	"time"

	"github.com/modshop/modshop/platform/apperr"
)

// kindProblems is the one table from the kinds of failure use cases report
// (platform/apperr) to the problems clients get: the status and the
// problem type of each. An error's Reason, when it has one, is its type
// instead (an unavailable "busy").
var kindProblems = map[apperr.Kind]struct {
	status int
	typ    string
}{
	apperr.ErrNotFound:     {http.StatusNotFound, "not-found"},
	apperr.ErrConflict:     {http.StatusConflict, "conflict"},
	apperr.ErrInvalid:      {http.StatusUnprocessableEntity, "validation"},
	apperr.ErrMalformed:    {http.StatusBadRequest, "bad-request"},
	apperr.ErrUnauthorized: {http.StatusUnauthorized, "unauthorized"},
	apperr.ErrForbidden:    {http.StatusForbidden, "forbidden"},
	apperr.ErrThrottled:    {http.StatusTooManyRequests, "too-many-requests"},
	apperr.ErrUnavailable:  {http.StatusServiceUnavailable, "unavailable"},
}

// ProblemFor is the problem a client gets for err, a use case's failure of
// a kind (wrapped or not); ok is false when err has no kind. An invalid
// request lists its fields as Invalid does (each once, at most
// MaxFieldErrors); a 429 or 503 always says when to come back.
func ProblemFor(err error) (p *Problem, ok bool) {
	var e *apperr.Error
	if !errors.As(err, &e) {
		var k apperr.Kind
		if !errors.As(err, &k) {
			return nil, false
		}
		e = &apperr.Error{Kind: k}
	}
	row, ok := kindProblems[e.Kind]
	if !ok {
		return nil, false
	}
	if e.Kind == apperr.ErrInvalid {
		return Invalid(fieldErrors(e.Fields)...), true
	}
	typ := row.typ
	if e.Reason != "" {
		typ = e.Reason
	}
	p = NewProblem(row.status, typ, e.Detail)
	p.Errors = fieldErrors(e.Fields)
	p.RetryAfter = wholeSeconds(e.RetryAfter)
	switch {
	case row.status == http.StatusTooManyRequests && p.RetryAfter < 1:
		p.RetryAfter = 1
	case row.status == http.StatusServiceUnavailable && p.RetryAfter < 1:
		p.RetryAfter = RetryAfterUnavailable
	}
	return p, true
}

func fieldErrors(in []apperr.FieldError) []FieldError {
	if len(in) == 0 {
		return nil
	}
	out := make([]FieldError, len(in))
	for i, f := range in {
		out[i] = FieldError{Field: f.Field, Message: f.Message}
	}
	return out
}

// wholeSeconds rounds d up to whole seconds, as Retry-After counts.
func wholeSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
