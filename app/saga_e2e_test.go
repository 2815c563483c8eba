package app_test

import (
	"net/http"
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// TestSaga_EndToEnd runs the saga's end-to-end suite (happy path, declined
// card, not enough stock, cancel while awaiting payment, idempotency key)
// against the single binary, all cases on one shop. app/split_test.go runs
// the same suite against the shop split into one process per module.
func TestSaga_EndToEnd(t *testing.T) {
	t.Parallel()
	sagasuite.Run(t, apptest.Start(t))
}

func TestOrders_SomeoneElsesOrderIs404(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"PEN": 5})
	_, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"PEN": 1})
	_, other := w.shop.Customer(t)
	for _, r := range []*testkit.Response{
		w.shop.API.Do("GET", "/api/v1/orders/"+o.ID, nil, testkit.Bearer(other)),
		w.shop.API.Do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, testkit.Bearer(other)),
	} {
		if r.Status != http.StatusNotFound {
			t.Errorf("someone else's order: %d, want 404", r.Status)
		}
	}
	var mine struct {
		Items []orderJSON `json:"items"`
	}
	w.shop.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(other)).Decode(t, &mine)
	if len(mine.Items) != 0 {
		t.Fatalf("another customer lists %d orders that are not theirs", len(mine.Items))
	}
	var all struct {
		Items []orderJSON `json:"items"`
	}
	w.shop.API.Do("GET", "/api/v1/orders?status=pending&limit=50", nil, testkit.Bearer(w.Admin)).Decode(t, &all)
	w.shop.API.Do("GET", "/api/v1/orders?limit=50", nil, testkit.Bearer(w.Admin)).Decode(t, &all)
	if len(all.Items) != 1 {
		t.Fatalf("staff list %d orders, want 1", len(all.Items))
	}
	if r := w.shop.API.Do("GET", "/api/v1/orders?status=shipped", nil, testkit.Bearer(w.Admin)); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown status filter: %d", r.Status)
	}
	w.shop.CheckInvariants(t)
}

func TestPlace_UnknownFieldsAndBadInputChangeNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"CUP": 5})
	pid := w.Products["CUP"]
	cases := []struct {
		name   string
		body   string
		status int
	}{
		{"status", `{"items":[{"product_id":"` + pid + `","quantity":1}],"payment_method":"pm_card_visa","status":"confirmed"}`, 400},
		{"total", `{"items":[{"product_id":"` + pid + `","quantity":1}],"payment_method":"pm_card_visa","total":"0.01"}`, 400},
		{"unit_price", `{"items":[{"product_id":"` + pid + `","quantity":1,"unit_price":"0.01"}],"payment_method":"pm_card_visa"}`, 400},
		{"no items", `{"items":[],"payment_method":"pm_card_visa"}`, 422},
		{"zero quantity", `{"items":[{"product_id":"` + pid + `","quantity":0}],"payment_method":"pm_card_visa"}`, 422},
		{"huge quantity", `{"items":[{"product_id":"` + pid + `","quantity":1000000}],"payment_method":"pm_card_visa"}`, 422},
		{"fractional quantity", `{"items":[{"product_id":"` + pid + `","quantity":1.5}],"payment_method":"pm_card_visa"}`, 400},
		{"bad product id", `{"items":[{"product_id":"nope","quantity":1}],"payment_method":"pm_card_visa"}`, 422},
		{"bad payment method", `{"items":[{"product_id":"` + pid + `","quantity":1}],"payment_method":"cash"}`, 422},
	}
	for _, c := range cases {
		r := w.shop.API.Do("POST", "/api/v1/orders", testkit.Raw(c.body), testkit.Bearer(w.Customer))
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
		}
	}
	if r := w.shop.API.Do("POST", "/api/v1/orders", testkit.Raw(`{}`)); r.Status != http.StatusUnauthorized {
		t.Errorf("anonymous order: %d", r.Status)
	}
	var list struct {
		Items []orderJSON `json:"items"`
	}
	w.shop.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(w.Admin)).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("bad requests created %d orders", len(list.Items))
	}
}
