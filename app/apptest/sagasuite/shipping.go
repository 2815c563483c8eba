package sagasuite

import (
	"net/http"
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// ShippedOrderIsChargedWithShippingAndShips: in every topology the
// shipping methods are served, an order with express shipping (the
// default MODSHOP_SHIPPING_METHODS) is charged its lines plus shipping,
// and staff ship and deliver it; the same shipment again changes nothing.
func ShippedOrderIsChargedWithShippingAndShips(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"KETTLE": 3})
	var methods struct {
		Items []struct{ Code, Price string }
	}
	if r := w.API.Do("GET", "/api/v1/shipping-methods", nil); r.Status != http.StatusOK {
		t.Fatalf("shipping methods: %d %s", r.Status, r.Body)
	} else {
		r.Decode(t, &methods)
	}
	express := ""
	for _, m := range methods.Items {
		if m.Code == "express" {
			express = m.Price
		}
	}
	if express != "9.90" {
		t.Fatalf("shipping methods %+v, want express at 9.90", methods.Items)
	}
	r := w.API.Do("POST", "/api/v1/orders", map[string]any{
		"items":           []map[string]any{{"product_id": w.Products["KETTLE"], "quantity": 2}},
		"payment_method":  "pm_card_visa",
		"shipping_method": "express",
		"shipping_address": map[string]any{"name": "Ann Example", "line1": "1 Main Street", "postal_code": "SW1A 1AA",
			"city": "London", "country": "GB"},
	}, testkit.Bearer(w.Customer))
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	var o Order
	r.Decode(t, &o)
	done := w.WaitStatus(t, o.ID, "confirmed")
	if done.Total == nil || *done.Total != "32.40" { // 2 × 11.25 + 9.90
		t.Errorf("total %v, want 32.40 with shipping", done.Total)
	}
	if status, p := w.Payments(t, w.Customer, o.ID); status != http.StatusOK || len(p.Items) != 1 || p.Items[0].Amount != "32.40" {
		t.Errorf("payments: %d %+v, want one of 32.40", status, p)
	}
	ship := map[string]any{"carrier": "Royal Mail", "tracking_number": "RM123456785GB"}
	for i := range 2 {
		if r := w.API.Do("POST", "/api/v1/orders/"+o.ID+"/shipment", ship, testkit.Bearer(w.Admin)); r.Status != http.StatusOK {
			t.Fatalf("ship (%d): %d %s", i+1, r.Status, r.Body)
		}
	}
	if r := w.API.Do("POST", "/api/v1/orders/"+o.ID+"/delivery", nil, testkit.Bearer(w.Admin)); r.Status != http.StatusOK {
		t.Fatalf("deliver: %d %s", r.Status, r.Body)
	}
	got := w.Order(t, w.Customer, o.ID)
	if !HasStep(got, "shipped") || !HasStep(got, "delivered") || got.Status != "confirmed" {
		t.Errorf("after delivery: %s, timeline %+v", got.Status, got.Timeline)
	}
	shop.CheckInvariants(t)
}
