package order_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

func TestSaga_NotEnoughStockIsRejected(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"RARE": 1, "COMMON": 50})
	r, o := w.place(t, w.customer, "pm_card_visa", map[string]int{"RARE": 2, "COMMON": 1})
	if r.Status != http.StatusAccepted || o.Status != "pending" || r.Header.Get("Location") != "/api/v1/orders/"+o.ID {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	done := w.waitStatus(t, o.ID, "rejected")
	if !hasStep(done, "stock_rejected") || done.CancelReason != "stock_rejected" {
		t.Fatalf("rejected order's timeline: %+v", done.Timeline)
	}
	if w.available(t, "COMMON") != 50 || w.available(t, "RARE") != 1 {
		t.Fatal("a rejected order kept stock")
	}
	w.shop.CheckInvariants(t)
}

func TestSaga_CustomerCancelsWhileAwaitingPaymentAndStockComesBack(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"MUG": 10})
	// pm_card_delayed keeps the order waiting for its payment a while.
	_, o := w.place(t, w.customer, "pm_card_delayed", map[string]int{"MUG": 3})
	waiting := w.waitStatus(t, o.ID, "awaiting_payment")
	if waiting.Total == nil || *waiting.Total == "" || waiting.Items[0].Name == nil || *waiting.Items[0].UnitPrice == "" {
		t.Fatalf("an order awaiting payment has its total and prices from the reservation: %+v", waiting)
	}
	if w.available(t, "MUG") != 7 {
		t.Fatalf("available %d while reserved, want 7", w.available(t, "MUG"))
	}
	r := w.shop.API.Do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, testkit.Bearer(w.customer))
	if r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	w.waitStatus(t, o.ID, "cancelled")
	w.shop.CheckInvariants(t)
	if got := w.available(t, "MUG"); got != 10 {
		t.Fatalf("available %d after cancel, want 10", got)
	}
	if r := w.shop.API.Do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, testkit.Bearer(w.customer)); r.Status != http.StatusConflict {
		t.Fatalf("cancelling a cancelled order: %d, want 409", r.Status)
	}
}

func TestOrders_SomeoneElsesOrderIs404(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"PEN": 5})
	_, o := w.place(t, w.customer, "pm_card_visa", map[string]int{"PEN": 1})
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
	w.shop.API.Do("GET", "/api/v1/orders?status=pending&limit=50", nil, testkit.Bearer(w.admin)).Decode(t, &all)
	w.shop.API.Do("GET", "/api/v1/orders?limit=50", nil, testkit.Bearer(w.admin)).Decode(t, &all)
	if len(all.Items) != 1 {
		t.Fatalf("staff list %d orders, want 1", len(all.Items))
	}
	if r := w.shop.API.Do("GET", "/api/v1/orders?status=shipped", nil, testkit.Bearer(w.admin)); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("unknown status filter: %d", r.Status)
	}
	w.shop.CheckInvariants(t)
}

func TestPlace_UnknownFieldsAndBadInputChangeNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"CUP": 5})
	pid := w.products["CUP"]
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
		r := w.shop.API.Do("POST", "/api/v1/orders", testkit.Raw(c.body), testkit.Bearer(w.customer))
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
	w.shop.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(w.admin)).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("bad requests created %d orders", len(list.Items))
	}
}

func TestIdempotencyKey_SameKeyTwiceAlsoConcurrentlyMakesOneOrder(t *testing.T) {
	t.Parallel()
	w := newWorld(t, map[string]int{"KEY": 20})
	key := testkit.Header("Idempotency-Key", "checkout-42")
	const tries = 8
	ids := make(chan string, tries)
	var wg sync.WaitGroup
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, o := w.place(t, w.customer, "pm_card_visa", map[string]int{"KEY": 2}, key)
			if r.Status != http.StatusAccepted {
				t.Errorf("place with key: %d %s", r.Status, r.Body)
			}
			ids <- o.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Fatalf("%d concurrent requests with one key made %d orders", tries, len(seen))
	}
	r, _ := w.place(t, w.customer, "pm_card_visa", map[string]int{"KEY": 3}, key)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, another body: %d, want 422", r.Status)
	}
	// The key is per user: another customer may use the same one.
	_, other := w.shop.Customer(t)
	r2, o2 := w.place(t, other, "pm_card_visa", map[string]int{"KEY": 1}, key)
	if r2.Status != http.StatusAccepted || seen[o2.ID] {
		t.Fatalf("another user's same key: %d, order %s", r2.Status, o2.ID)
	}
	w.shop.CheckInvariants(t)
	if got := w.available(t, "KEY"); got != 17 {
		t.Fatalf("available %d, want 17: one order of 2 and one of 1", got)
	}
}
