package orders

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/apperr"
)

func TestValidate_TooManyItemsIsOneErrorForItemsAndNoneForEach(t *testing.T) {
	t.Parallel()
	for _, n := range []int{maxLines + 1, 100_000} {
		req := PlaceOrder{Items: make([]OrderLine, n), PaymentMethod: "pm_card_visa"} // every line empty: {}
		errs := req.validate()
		want := []apperr.FieldError{{Field: "items", Message: "at most 50 items"}}
		if fmt.Sprint(errs) != fmt.Sprint(want) {
			if len(errs) > 3 {
				errs = errs[:3]
			}
			t.Errorf("%d empty items: errors start %v, want only %v", n, errs, want)
		}
	}
}

func TestValidate_AtTheLimitEachBadLineIsStillReported(t *testing.T) {
	t.Parallel()
	lines := make([]OrderLine, maxLines)
	for i := range lines {
		lines[i] = OrderLine{ProductID: uuid.NewString(), Quantity: 1}
	}
	lines[7].Quantity = 0
	req := PlaceOrder{Items: lines, PaymentMethod: "pm_card_visa"}
	errs := req.validate()
	want := []apperr.FieldError{{Field: "items.quantity", Message: "must be a whole number from 1 to 100"}}
	if fmt.Sprint(errs) != fmt.Sprint(want) {
		t.Fatalf("errors %v, want %v", errs, want)
	}
}
