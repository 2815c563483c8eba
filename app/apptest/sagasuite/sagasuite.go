// Package sagasuite is the order saga's end-to-end suite, written against
// apptest.Target so that the same tests run against every topology: the
// single binary (apptest.Shop) and the shop split into processes
// (apptest.Split). Each case makes its own products and customers, so the
// cases share one shop and run in parallel; each ends with the invariant
// checker.
package sagasuite

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// Case is one end-to-end test.
type Case struct {
	Name string
	Run  func(t *testing.T, shop apptest.Target)
}

// Cases are the suite: what every topology must do alike.
var Cases = []Case{
	{"HappyPathConfirmsWithOneCapture", HappyPathConfirmsWithOneCapture},
	{"DeclinedCardCancelsAndStockComesBack", DeclinedCardCancelsAndStockComesBack},
	{"NotEnoughStockIsRejected", NotEnoughStockIsRejected},
	{"CustomerCancelsWhileAwaitingPaymentAndStockComesBack", CustomerCancelsWhileAwaitingPaymentAndStockComesBack},
	{"IdempotencyKeyTwiceMakesOneOrderAndOneCharge", IdempotencyKeyTwiceMakesOneOrderAndOneCharge},
	{"ShippedOrderIsChargedWithShippingAndShips", ShippedOrderIsChargedWithShippingAndShips},
	{"StaffRefundAndReturnAfterConfirmation", StaffRefundAndReturnAfterConfirmation},
}

// Run runs every case against shop, as parallel subtests of t.
func Run(t *testing.T, shop apptest.Target) {
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			c.Run(t, shop)
		})
	}
}

func HappyPathConfirmsWithOneCapture(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"BEANS": 10, "FILTER": 10})
	_, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"BEANS": 2, "FILTER": 1})
	done := w.WaitStatus(t, o.ID, "confirmed")
	shop.CheckInvariants(t)
	for _, step := range []string{"placed", "stock_reserved", "payment_requested", "payment_succeeded"} {
		if !HasStep(done, step) {
			t.Errorf("timeline lacks %s: %+v", step, done.Timeline)
		}
	}
	if done.Total == nil || done.PaymentState != "captured" {
		t.Fatalf("confirmed order: total %v, payment %s", done.Total, done.PaymentState)
	}
	status, p := w.Payments(t, w.Customer, o.ID)
	if status != http.StatusOK || len(p.Items) != 1 || p.Items[0].Status != "captured" || p.Items[0].Amount != *done.Total {
		t.Fatalf("payments of the order: %d %+v, want one captured payment of %s", status, p, *done.Total)
	}
	if w.Available(t, "BEANS") != 8 || w.Available(t, "FILTER") != 9 {
		t.Fatal("stock was not sold")
	}
	_, other := shop.Customer(t)
	if status, _ := w.Payments(t, other, o.ID); status != http.StatusNotFound {
		t.Fatalf("someone else's payments: %d, want 404", status)
	}
	if r := w.API.Do("GET", "/api/v1/orders/"+o.ID, nil, testkit.Bearer(other)); r.Status != http.StatusNotFound {
		t.Fatalf("someone else's order: %d, want 404", r.Status)
	}
}

func DeclinedCardCancelsAndStockComesBack(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"KETTLE": 4})
	_, o := w.Place(t, w.Customer, "pm_card_chargeDeclined", map[string]int{"KETTLE": 2})
	done := w.WaitStatus(t, o.ID, "cancelled")
	shop.CheckInvariants(t)
	if done.CancelReason != "payment_failed" || done.PaymentState != "failed" {
		t.Fatalf("declined order: reason %q, payment %q", done.CancelReason, done.PaymentState)
	}
	if got := w.Available(t, "KETTLE"); got != 4 {
		t.Fatalf("available %d after a declined card, want 4", got)
	}
}

func NotEnoughStockIsRejected(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"RARE": 1, "COMMON": 50})
	r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"RARE": 2, "COMMON": 1})
	if r.Status != http.StatusAccepted || o.Status != "pending" || r.Header.Get("Location") != "/api/v1/orders/"+o.ID {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	done := w.WaitStatus(t, o.ID, "rejected")
	if !HasStep(done, "stock_rejected") || done.CancelReason != "stock_rejected" {
		t.Fatalf("rejected order's timeline: %+v", done.Timeline)
	}
	shop.CheckInvariants(t)
	if w.Available(t, "COMMON") != 50 || w.Available(t, "RARE") != 1 {
		t.Fatal("a rejected order kept stock")
	}
}

func CustomerCancelsWhileAwaitingPaymentAndStockComesBack(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"MUG": 10})
	// pm_card_delayed keeps the order waiting for its payment a while.
	_, o := w.Place(t, w.Customer, "pm_card_delayed", map[string]int{"MUG": 3})
	waiting := w.WaitStatus(t, o.ID, "awaiting_payment")
	if waiting.Total == nil || *waiting.Total == "" || waiting.Items[0].Name == nil || *waiting.Items[0].UnitPrice == "" {
		t.Fatalf("an order awaiting payment has its total and prices from the reservation: %+v", waiting)
	}
	if got := w.Available(t, "MUG"); got != 7 {
		t.Fatalf("available %d while reserved, want 7", got)
	}
	if r := w.API.Do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, testkit.Bearer(w.Customer)); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	w.WaitStatus(t, o.ID, "cancelled")
	shop.CheckInvariants(t)
	if got := w.Available(t, "MUG"); got != 10 {
		t.Fatalf("available %d after cancel, want 10", got)
	}
	if r := w.API.Do("POST", "/api/v1/orders/"+o.ID+"/cancel", nil, testkit.Bearer(w.Customer)); r.Status != http.StatusConflict {
		t.Fatalf("cancelling a cancelled order: %d, want 409", r.Status)
	}
}

// IdempotencyKeyTwiceMakesOneOrderAndOneCharge: the same key sent twice,
// and by racing requests, makes one order charged once; the same key with
// another body is refused; another customer's same key is theirs.
func IdempotencyKeyTwiceMakesOneOrderAndOneCharge(t *testing.T, shop apptest.Target) {
	w := NewWorld(t, shop, map[string]int{"KEY": 20})
	key := testkit.Header("Idempotency-Key", "checkout-42")
	const tries = 6
	ids := make(chan string, tries)
	var wg sync.WaitGroup
	for range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"KEY": 2}, key)
			if r.Status != http.StatusAccepted {
				t.Errorf("place with the key: %d %s", r.Status, r.Body)
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
		t.Fatalf("%d racing requests with one key made %d orders", tries, len(seen))
	}
	_, again := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"KEY": 2}, key)
	if !seen[again.ID] {
		t.Fatalf("the key sent once more made another order %s", again.ID)
	}
	o := again
	if r, _ := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"KEY": 3}, key); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("same key, another body: %d, want 422", r.Status)
	}
	_, other := shop.Customer(t)
	r2, o2 := w.Place(t, other, "pm_card_visa", map[string]int{"KEY": 1}, key)
	if r2.Status != http.StatusAccepted || o2.ID == o.ID {
		t.Fatalf("another customer's same key: %d, order %s", r2.Status, o2.ID)
	}
	w.WaitStatus(t, o.ID, "confirmed")
	w.WaitStatus(t, o2.ID, "confirmed")
	shop.CheckInvariants(t)
	if _, p := w.Payments(t, w.Customer, o.ID); len(p.Items) != 1 {
		t.Fatalf("%d payments for one order, want 1", len(p.Items))
	}
	if got := w.Available(t, "KEY"); got != 17 {
		t.Fatalf("available %d, want 17: one order of 2 and one of 1", got)
	}
}

// Order is an order as the API shows it.
type Order struct {
	ID           string  `json:"id"`
	UserID       string  `json:"user_id"`
	Status       string  `json:"status"`
	Total        *string `json:"total"`
	PaymentState string  `json:"payment_state"`
	CancelReason string  `json:"cancel_reason"`
	Items        []struct {
		ProductID string  `json:"product_id"`
		Quantity  int     `json:"quantity"`
		Name      *string `json:"name"`
		UnitPrice *string `json:"unit_price"`
	} `json:"items"`
	Timeline []struct {
		Step   string `json:"step"`
		Detail string `json:"detail"`
	} `json:"timeline"`
}

// Payments is an order's payments as the API shows them.
type Payments struct {
	Items []struct {
		ID      string `json:"id"`
		OrderID string `json:"order_id"`
		Status  string `json:"status"`
		Amount  string `json:"amount"`
		Refunds []struct {
			Status string `json:"status"`
			Amount string `json:"amount"`
		} `json:"refunds"`
	} `json:"items"`
}

// World is a shop seen by one test: an admin, a customer of its own and
// products of its own (their SKUs made unique, so tests can share a shop).
type World struct {
	API      *testkit.API
	Admin    string
	Customer string
	Products map[string]string // short name -> product id
}

// NewWorld creates a customer and the products in stock (name -> units).
func NewWorld(t *testing.T, shop apptest.Target, stock map[string]int) *World {
	t.Helper()
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	w := &World{API: shop.Client(t), Admin: admin, Customer: customer, Products: map[string]string{}}
	i := 0
	for name, n := range stock {
		i++
		sku := strings.ReplaceAll(apptest.Unique(name+"-"), "_", "-")
		r := w.API.Do("POST", "/api/v1/products", map[string]any{"sku": sku, "name": "Thing " + name, "price": fmt.Sprintf("%d.25", 10+i), "stock": n}, testkit.Bearer(admin))
		if r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", sku, r.Status, r.Body)
		}
		var p struct{ ID string }
		r.Decode(t, &p)
		w.Products[name] = p.ID
	}
	return w
}

// Place orders lines (product name -> quantity) as the holder of token.
func (w *World) Place(t *testing.T, token, method string, lines map[string]int, opts ...testkit.Option) (*testkit.Response, Order) {
	t.Helper()
	items := []map[string]any{}
	for name, q := range lines {
		items = append(items, map[string]any{"product_id": w.Products[name], "quantity": q})
	}
	r := w.API.Do("POST", "/api/v1/orders", map[string]any{"items": items, "payment_method": method}, append(opts, testkit.Bearer(token))...)
	var o Order
	if r.Status == http.StatusAccepted {
		r.Decode(t, &o)
	}
	return r, o
}

// Order reads an order as the holder of token.
func (w *World) Order(t *testing.T, token, id string) Order {
	t.Helper()
	r := w.API.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order: %d %s", r.Status, r.Body)
	}
	var o Order
	r.Decode(t, &o)
	return o
}

// WaitStatus waits (generously) for the saga to bring the order to status.
func (w *World) WaitStatus(t *testing.T, id, status string) Order {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		o := w.Order(t, w.Admin, id)
		if o.Status == status {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is %s after 60s, want %s; timeline %+v", id, o.Status, status, o.Timeline)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Available is a product's available stock.
func (w *World) Available(t *testing.T, name string) int {
	t.Helper()
	var p struct{ Available int }
	w.API.Do("GET", "/api/v1/products/"+w.Products[name], nil).Decode(t, &p)
	return p.Available
}

// Payments lists an order's payments as the holder of token.
func (w *World) Payments(t *testing.T, token, orderID string) (int, Payments) {
	t.Helper()
	r := w.API.Do("GET", "/api/v1/payments?order_id="+orderID, nil, testkit.Bearer(token))
	var p Payments
	if r.Status == http.StatusOK {
		r.Decode(t, &p)
	}
	return r.Status, p
}

// HasStep reports whether the order's timeline has step.
func HasStep(o Order, step string) bool {
	for _, s := range o.Timeline {
		if s.Step == step {
			return true
		}
	}
	return false
}
