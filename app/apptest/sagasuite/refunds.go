package sagasuite

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// refunds is what an order shows of its refunds.
type refunds struct {
	Refunded    string `json:"refunded"`
	RefundState string `json:"refund_state"`
	Refunds     []struct {
		Amount string `json:"amount"`
		Status string `json:"status"`
	} `json:"refunds"`
}

// StaffRefundAndReturnAfterConfirmation: staff refund one line of a
// confirmed order through the payment module and the provider (the order
// and the payment read partly refunded), record that goods came back
// (the stock grows by them, once), then refund the rest (refunded).
func StaffRefundAndReturnAfterConfirmation(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"KETTLE": 5, "CUP": 5})
	_, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"KETTLE": 1, "CUP": 2})
	done := w.WaitStatus(t, o.ID, "confirmed")
	post := func(path, key string, body map[string]any) {
		t.Helper()
		r := w.API.Do("POST", "/api/v1/orders/"+o.ID+path, body, testkit.Bearer(w.Admin), testkit.Header("Idempotency-Key", key))
		if r.Status != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", path, r.Status, r.Body)
		}
	}
	waitState := func(state string) refunds {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var got refunds
			w.API.Do("GET", "/api/v1/orders/"+o.ID, nil, testkit.Bearer(w.Customer)).Decode(t, &got)
			if got.RefundState == state {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s has refund state %s after 60s, want %s: %+v", o.ID, got.RefundState, state, got)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	var cupPrice string
	for _, it := range done.Items {
		if it.ProductID == w.Products["CUP"] {
			cupPrice = *it.UnitPrice
		}
	}
	cup := []map[string]any{{"product_id": w.Products["CUP"], "quantity": 1}}
	post("/refunds", "refund-cup-"+o.ID, map[string]any{"lines": cup, "reason": "chipped"})
	post("/refunds", "refund-cup-"+o.ID, map[string]any{"lines": cup, "reason": "chipped"}) // a retry
	got := waitState("partly_refunded")
	if got.Refunded != cupPrice || len(got.Refunds) != 1 || got.Refunds[0].Status != "succeeded" {
		t.Fatalf("after refunding a cup: %+v, want one refund of %s", got, cupPrice)
	}
	if _, p := w.Payments(t, w.Customer, o.ID); len(p.Items) != 1 || p.Items[0].Status != "partly_refunded" {
		t.Fatalf("payments: %+v, want one partly_refunded", p)
	}
	before := w.Available(t, "CUP")
	post("/returns", "return-cup-"+o.ID, map[string]any{"lines": cup})
	post("/returns", "return-cup-"+o.ID, map[string]any{"lines": cup})
	deadline := time.Now().Add(60 * time.Second)
	for w.Available(t, "CUP") != before+1 {
		if time.Now().After(deadline) {
			t.Fatalf("the returned cup is not back in stock after 60s: %d available, want %d", w.Available(t, "CUP"), before+1)
		}
		time.Sleep(25 * time.Millisecond)
	}
	post("/refunds", "refund-rest-"+o.ID, map[string]any{"amount": subtract(t, *done.Total, cupPrice), "reason": "goodwill"})
	if got = waitState("refunded"); got.Refunded != *done.Total {
		t.Fatalf("refunded order: %+v, want %s back", got, *done.Total)
	}
	if _, p := w.Payments(t, w.Customer, o.ID); len(p.Items) != 1 || p.Items[0].Status != "refunded" || len(p.Items[0].Refunds) != 2 {
		t.Fatalf("payments: %+v, want one refunded by two refunds", p)
	}
	shop.CheckInvariants(t)
}

// subtract is a - b for amounts with two decimals, in cents.
func subtract(t *testing.T, a, b string) string {
	t.Helper()
	var ae, ac, be, bc int
	if _, err := fmt.Sscanf(a, "%d.%d", &ae, &ac); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(b, "%d.%d", &be, &bc); err != nil {
		t.Fatal(err)
	}
	d := ae*100 + ac - be*100 - bc
	return fmt.Sprintf("%d.%02d", d/100, d%100)
}
