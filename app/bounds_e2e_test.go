package app_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// emptyItems is an order body of n empty lines ({}), as an attacker sends.
func emptyItems(n int) testkit.Raw {
	var b bytes.Buffer
	b.WriteString(`{"payment_method":"pm_card_visa","items":[{}`)
	for range n - 1 {
		b.WriteString(`,{}`)
	}
	b.WriteString(`]}`)
	return testkit.Raw(b.Bytes())
}

func TestPlace_TooManyItemsIsOneSmallProblem(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"CUP": 5})
	r := w.shop.API.Do("POST", "/api/v1/orders", emptyItems(10_000), testkit.Bearer(w.Customer))
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("10,000 empty items: %d %.300s, want 422", r.Status, r.Body)
	}
	p := r.Problem(t)
	errs, _ := p["errors"].([]any)
	if len(errs) != 1 || !strings.Contains(string(r.Body), `"field":"items","message":"at most 50 items"`) {
		t.Fatalf("10,000 empty items: %d errors (%d bytes), want one for items: %.300s", len(errs), len(r.Body), r.Body)
	}
}

func TestPlace_BodyFarLargerThanAnOrderIs413(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"CUP": 5})
	// A megabyte of empty lines: what the shop's body limit lets through to
	// every other endpoint, and what 50 lines never need.
	body := emptyItems(340_000)
	r := w.shop.API.Do("POST", "/api/v1/orders", body, testkit.Bearer(w.Customer))
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d bytes of empty items: %d (%d bytes) %.300s, want 413", len(body), r.Status, len(r.Body), r.Body)
	}
	var list struct {
		Items []orderJSON `json:"items"`
	}
	w.shop.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(w.Admin)).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("refused requests created %d orders", len(list.Items))
	}
}
