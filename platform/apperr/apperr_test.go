package apperr_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/modshop/modshop/platform/apperr"
)

func TestKinds_MatchThroughWrappingAndOnlyTheirOwn(t *testing.T) {
	kinds := []apperr.Kind{apperr.ErrNotFound, apperr.ErrConflict, apperr.ErrInvalid, apperr.ErrMalformed,
		apperr.ErrUnauthorized, apperr.ErrForbidden, apperr.ErrThrottled, apperr.ErrUnavailable}
	for _, k := range kinds {
		err := fmt.Errorf("place order: %w", fmt.Errorf("in a transaction: %w", &apperr.Error{Kind: k, Detail: "d"}))
		for _, other := range kinds {
			if got := errors.Is(err, other); got != (other == k) {
				t.Errorf("errors.Is(wrapped %s, %s) = %v", k, other, got)
			}
		}
	}
	if errors.Is(errors.New("not found"), apperr.ErrNotFound) {
		t.Error("an error that only says the same words is taken for the kind")
	}
}

func TestInvalid_FieldsReadWithErrorsAsThroughWrapping(t *testing.T) {
	err := fmt.Errorf("sign up: %w", apperr.Invalid(
		apperr.FieldError{Field: "username", Message: "is required"},
		apperr.FieldError{Field: "email", Message: "is required"}))
	var e *apperr.Error
	if !errors.As(err, &e) || !errors.Is(err, apperr.ErrInvalid) {
		t.Fatalf("%v: not an invalid *apperr.Error", err)
	}
	want := []apperr.FieldError{{Field: "username", Message: "is required"}, {Field: "email", Message: "is required"}}
	if !slices.Equal(e.Fields, want) {
		t.Fatalf("fields = %v, want %v", e.Fields, want)
	}
}

func TestWithField_LeavesTheSharedErrorAlone(t *testing.T) {
	base := apperr.Conflict("this username is taken")
	named := base.WithField("username", "is taken")
	if len(base.Fields) != 0 {
		t.Fatalf("the shared error gained fields: %v", base.Fields)
	}
	if named.Kind != apperr.ErrConflict || named.Detail != base.Detail ||
		!slices.Equal(named.Fields, []apperr.FieldError{{Field: "username", Message: "is taken"}}) {
		t.Fatalf("WithField = %+v", named)
	}
}

func TestConstructors_SetTheirKindAndWhatTheyAreGiven(t *testing.T) {
	for _, tc := range []struct {
		err  *apperr.Error
		want apperr.Error
	}{
		{apperr.NotFound("no such order"), apperr.Error{Kind: apperr.ErrNotFound, Detail: "no such order"}},
		{apperr.Malformed("bad cursor"), apperr.Error{Kind: apperr.ErrMalformed, Detail: "bad cursor"}},
		{apperr.Unauthorized("log in"), apperr.Error{Kind: apperr.ErrUnauthorized, Detail: "log in"}},
		{apperr.Forbidden("staff only"), apperr.Error{Kind: apperr.ErrForbidden, Detail: "staff only"}},
		{apperr.Throttled("slow down", 3*time.Second), apperr.Error{Kind: apperr.ErrThrottled, Detail: "slow down", RetryAfter: 3 * time.Second}},
		{apperr.Unavailable("busy", "try later", time.Second), apperr.Error{Kind: apperr.ErrUnavailable, Reason: "busy", Detail: "try later", RetryAfter: time.Second}},
	} {
		if tc.err.Kind != tc.want.Kind || tc.err.Detail != tc.want.Detail || tc.err.Reason != tc.want.Reason || tc.err.RetryAfter != tc.want.RetryAfter {
			t.Errorf("got %+v, want %+v", *tc.err, tc.want)
		}
	}
	if got := apperr.InvalidField("q", "too long"); !slices.Equal(got.Fields, []apperr.FieldError{{Field: "q", Message: "too long"}}) {
		t.Errorf("InvalidField = %+v", got)
	}
}
