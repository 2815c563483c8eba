// Package apperr holds the kinds of failure a use case reports on purpose:
// something is not there, clashes with what is, is invalid (field by
// field), cannot be read, needs credentials or a right the caller lacks,
// comes too often, or cannot be served this moment. It knows nothing of
// HTTP: platform/httpx maps each kind to its answer in one table.
//
// A use case returns an *Error built by a constructor; callers match the
// kind with errors.Is (errors.Is(err, apperr.ErrNotFound)) and read the
// detail, the fields or the retry delay with errors.As. Wrapping with %w
// keeps both.
package apperr

import (
	"fmt"
	"time"
)

// Kind is what sort of failure an Error is. The kinds are the Err values
// below; each is an error itself, so errors.Is(err, ErrConflict) asks
// whether err is a conflict of any detail.
type Kind string

func (k Kind) Error() string { return string(k) }

// The kinds.
const (
	// ErrNotFound: no such thing, or none the caller may see.
	ErrNotFound Kind = "not found"
	// ErrConflict: the request clashes with the current state.
	ErrConflict Kind = "conflict"
	// ErrInvalid: some fields are invalid; Error.Fields says which.
	ErrInvalid Kind = "invalid"
	// ErrMalformed: an input cannot be read at all (a cursor this
	// service never gave out).
	ErrMalformed Kind = "malformed"
	// ErrUnauthorized: no valid credentials.
	ErrUnauthorized Kind = "unauthorized"
	// ErrForbidden: valid credentials without the right to do this.
	ErrForbidden Kind = "forbidden"
	// ErrThrottled: too many attempts; Error.RetryAfter says when to
	// come back.
	ErrThrottled Kind = "throttled"
	// ErrUnavailable: the service cannot do it this moment and will
	// again; Error.RetryAfter may say when.
	ErrUnavailable Kind = "unavailable"
)

// FieldError names one invalid input field and what is wrong with it.
type FieldError struct {
	Field   string
	Message string
}

// Error is a failure of a kind, with what the caller may be told about it.
type Error struct {
	Kind Kind
	// Detail says what happened, in words a client may read.
	Detail string
	// Reason refines the kind with a stable, machine-readable name
	// ("busy" for an unavailable service busy hashing); "" for none.
	Reason string
	// Fields lists the fields at fault: every invalid one of an
	// ErrInvalid, the taken one of a conflict.
	Fields []FieldError
	// RetryAfter is when to try again (throttled, unavailable); 0 for
	// not said.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	switch {
	case e.Detail != "":
		return fmt.Sprintf("%s: %s", e.Kind, e.Detail)
	case len(e.Fields) > 0:
		return fmt.Sprintf("%s: %s %s", e.Kind, e.Fields[0].Field, e.Fields[0].Message)
	}
	return string(e.Kind)
}

// Is makes errors.Is(err, kind) true for an Error of that kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k == e.Kind
}

// WithField returns a copy of e that names field as the one at fault.
func (e *Error) WithField(field, message string) *Error {
	out := *e
	out.Fields = append(append([]FieldError(nil), e.Fields...), FieldError{Field: field, Message: message})
	return &out
}

// NotFound reports that something does not exist, or not for this caller.
func NotFound(detail string) *Error { return &Error{Kind: ErrNotFound, Detail: detail} }

// Conflict reports a request that clashes with the current state.
func Conflict(detail string) *Error { return &Error{Kind: ErrConflict, Detail: detail} }

// Invalid reports the invalid fields of a request, all of them at once.
func Invalid(fields ...FieldError) *Error { return &Error{Kind: ErrInvalid, Fields: fields} }

// InvalidField reports one invalid field.
func InvalidField(field, message string) *Error {
	return Invalid(FieldError{Field: field, Message: message})
}

// Malformed reports an input that cannot be read at all.
func Malformed(detail string) *Error { return &Error{Kind: ErrMalformed, Detail: detail} }

// Unauthorized reports missing or wrong credentials.
func Unauthorized(detail string) *Error { return &Error{Kind: ErrUnauthorized, Detail: detail} }

// Forbidden reports a caller without the right to do this.
func Forbidden(detail string) *Error { return &Error{Kind: ErrForbidden, Detail: detail} }

// Throttled reports too many attempts; retryAfter says when to come back.
func Throttled(detail string, retryAfter time.Duration) *Error {
	return &Error{Kind: ErrThrottled, Detail: detail, RetryAfter: retryAfter}
}

// Unavailable reports a service that cannot answer this moment, for the
// given reason ("" for none), and when to try again (0: not said).
func Unavailable(reason, detail string, retryAfter time.Duration) *Error {
	return &Error{Kind: ErrUnavailable, Reason: reason, Detail: detail, RetryAfter: retryAfter}
}
