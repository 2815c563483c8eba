package httpx

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestInvalid_ListsAtMostMaxFieldErrorsAndSaysMoreWereLeftOut(t *testing.T) {
	t.Parallel()
	var errs []FieldError
	for i := range 1000 {
		errs = append(errs, FieldError{Field: fmt.Sprintf("f%d", i), Message: "is wrong"})
	}
	p := Invalid(errs...)
	if len(p.Errors) != MaxFieldErrors {
		t.Fatalf("%d field errors listed, want %d: an answer must not grow with the body", len(p.Errors), MaxFieldErrors)
	}
	if p.Errors[0].Field != "f0" || p.Errors[MaxFieldErrors-1].Field != fmt.Sprintf("f%d", MaxFieldErrors-1) {
		t.Fatalf("not the first errors, in order: %v", p.Errors)
	}
	if !strings.Contains(p.Detail, "more are not") {
		t.Fatalf("detail %q does not say that more were left out", p.Detail)
	}
}

func TestInvalid_ListsTheSameErrorOnce(t *testing.T) {
	t.Parallel()
	same := FieldError{Field: "items.product_id", Message: "must be a product id"}
	p := Invalid(same, same, FieldError{Field: "payment_method", Message: "is required"}, same)
	want := []FieldError{same, {Field: "payment_method", Message: "is required"}}
	if fmt.Sprint(p.Errors) != fmt.Sprint(want) {
		t.Fatalf("errors %v, want %v", p.Errors, want)
	}
	if p.Detail != "the request has invalid fields" {
		t.Fatalf("detail %q: nothing was left out", p.Detail)
	}
}

func TestWriteProblem_ListsAtMostMaxFieldErrorsOfAProblemBuiltByHand(t *testing.T) {
	t.Parallel()
	p := NewProblem(http.StatusConflict, "conflict", "clashes")
	for i := range 100 {
		p.Errors = append(p.Errors, FieldError{Field: fmt.Sprintf("f%d", i), Message: "clashes"})
	}
	r := engine(slog.New(slog.DiscardHandler), "POST", "/x", func(c *gin.Context) { Fail(c, p) })
	w := serve(r, httptest.NewRequest("POST", "/x", nil))
	errs, _ := problemOf(t, w)["errors"].([]any)
	if w.Code != http.StatusConflict || len(errs) != MaxFieldErrors {
		t.Fatalf("%d with %d field errors, want 409 with %d", w.Code, len(errs), MaxFieldErrors)
	}
}
