package app_test

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// TestSaga_TotalTooLargeIsRejectedAtReservation: an order whose total is
// more than an order can hold (NUMERIC(10,2): 99,999,999.99) is rejected
// when its stock is reserved, with the reason, and the stock comes back;
// nothing becomes a dead letter and nothing is charged. That holds for one
// line too large (100 × 1,000,000.00) and for lines that each fit but not
// together; an order just inside the bound is confirmed. The order module's
// product copy would refuse such orders at placement (422): here it is
// stale, with prices far below the product module's, as when a price was
// raised a moment before; the prices charged are the product module's.
func TestSaga_TotalTooLargeIsRejectedAtReservation(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.addProduct(t, "GOLD", "1000000.00", 300) // enough for the three orders at once
	w.addProduct(t, "SILVER", "600000.00", 200)
	staleCopy(t, w, "GOLD", "SILVER")

	oneLine := w.placeAccepted(t, map[string]int{"GOLD": 100})
	twoLines := w.placeAccepted(t, map[string]int{"GOLD": 50, "SILVER": 90}) // 50,000,000 + 54,000,000
	justInside := w.placeAccepted(t, map[string]int{"GOLD": 99})             // 99,000,000.00

	for _, id := range []string{oneLine, twoLines} {
		o := w.waitFinal(t, id)
		if o.Status != "rejected" || o.CancelReason != "total_too_large" || !sagasuite.HasStep(o, "total_too_large") {
			t.Errorf("order over the bound: %s (%q), timeline %+v; want rejected as total_too_large", o.Status, o.CancelReason, o.Timeline)
		}
		if o.Total != nil || o.PaymentState != "none" {
			t.Errorf("order over the bound: total %s, payment %s; want no total and no payment", text(o.Total), o.PaymentState)
		}
		if status, p := w.Payments(t, w.Admin, id); status != http.StatusOK || len(p.Items) != 0 {
			t.Errorf("payments of an order over the bound: %d %+v, want none", status, p)
		}
	}
	if o := w.waitFinal(t, justInside); o.Status != "confirmed" || o.Total == nil || *o.Total != "99000000.00" {
		t.Errorf("order just inside the bound: %s, total %s; want confirmed at 99000000.00", o.Status, text(o.Total))
	}
	w.shop.CheckInvariants(t)
	if got := w.Available(t, "GOLD"); got != 300-99 {
		t.Errorf("GOLD available %d, want %d: only the confirmed order keeps stock", got, 300-99)
	}
	if got := w.Available(t, "SILVER"); got != 200 {
		t.Errorf("SILVER available %d, want 200", got)
	}
	w.noDeadLetters(t)
}

// TestPlace_TotalTooLargeAtTheCopysPricesIs422: with the order module's
// product copy up to date, an order whose total would pass the bound is
// refused at placement, naming items, and nothing is written.
func TestPlace_TotalTooLargeAtTheCopysPricesIs422(t *testing.T) {
	t.Parallel()
	w := newWorld(t, nil)
	w.addProduct(t, "GOLD", "1000000.00", 300)
	w.addProduct(t, "SILVER", "600000.00", 200)
	w.copyKnows(t, "GOLD", "SILVER")
	for _, lines := range []map[string]int{{"GOLD": 100}, {"GOLD": 50, "SILVER": 90}} {
		r, _ := w.Place(t, w.Customer, "pm_card_visa", lines)
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("place %v: %d %s, want 422", lines, r.Status, r.Body)
		}
		p := r.Problem(t)
		if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "items" {
			t.Errorf("place %v: problem %v, want one error naming items", lines, p)
		}
	}
	var page struct{ Items []any }
	w.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(w.Customer)).Decode(t, &page)
	if len(page.Items) != 0 {
		t.Errorf("the customer has %d orders after the refusals, want none", len(page.Items))
	}
	justInside := w.placeAccepted(t, map[string]int{"GOLD": 99})
	if o := w.waitFinal(t, justInside); o.Status != "confirmed" {
		t.Errorf("order just inside the bound: %s, want confirmed", o.Status)
	}
}

// copyKnows waits until the order module's product copy holds the products.
func (w *world) copyKnows(t *testing.T, names ...string) {
	t.Helper()
	db, err := sql.Open("pgx", w.shop.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := make([]string, len(names))
	for i, n := range names {
		ids[i] = w.Products[n]
	}
	testkit.Eventually(t, "the product copy to know "+strings.Join(names, ", "), func() bool {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM orders.product_copies WHERE id = ANY($1::uuid[])`, ids).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == len(ids)
	})
}

// staleCopy makes the order module's copy of the products stale: once it
// holds them, their copied prices drop to 1.00 (the version stays, so no
// older event undoes it).
func staleCopy(t *testing.T, w *world, names ...string) {
	t.Helper()
	w.copyKnows(t, names...)
	db, err := sql.Open("pgx", w.shop.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, n := range names {
		if _, err := db.Exec(`UPDATE orders.product_copies SET price = 1.00 WHERE id = $1`, w.Products[n]); err != nil {
			t.Fatal(err)
		}
	}
}

// addProduct creates a product at price with stock units, under name.
func (w *world) addProduct(t *testing.T, name, price string, stock int) {
	t.Helper()
	sku := strings.ReplaceAll(apptest.Unique(name+"-"), "_", "-")
	r := w.API.Do("POST", "/api/v1/products", map[string]any{"sku": sku, "name": "Thing " + name, "price": price, "stock": stock}, testkit.Bearer(w.Admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", sku, r.Status, r.Body)
	}
	var p struct{ ID string }
	r.Decode(t, &p)
	w.Products[name] = p.ID
}

// placeAccepted places an order paid with pm_card_visa as the world's
// customer and returns its id; the shop must accept it.
func (w *world) placeAccepted(t *testing.T, lines map[string]int) string {
	t.Helper()
	r, o := w.Place(t, w.Customer, "pm_card_visa", lines)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place %v: %d %s", lines, r.Status, r.Body)
	}
	return o.ID
}

// waitFinal waits (generously) until the order is confirmed, rejected or
// cancelled, whichever it is.
func (w *world) waitFinal(t *testing.T, id string) orderJSON {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		o := w.Order(t, w.Admin, id)
		switch o.Status {
		case "confirmed", "rejected", "cancelled":
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is still %s after 90s; timeline %+v", id, o.Status, o.Timeline)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// noDeadLetters fails the test if any message of the shop, open or
// resolved, became a dead letter.
func (w *world) noDeadLetters(t *testing.T) {
	t.Helper()
	var list struct {
		Items []struct {
			Topic   string `json:"topic"`
			Handler string `json:"handler"`
			Error   string `json:"error"`
		} `json:"items"`
	}
	w.API.Do("GET", "/api/v1/admin/dead-letters?state=all", nil, testkit.Bearer(w.Admin)).Decode(t, &list)
	for _, d := range list.Items {
		t.Errorf("dead letter: %s in %s: %s", d.Topic, d.Handler, d.Error)
	}
}

// text shows a value that may be null.
func text(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
