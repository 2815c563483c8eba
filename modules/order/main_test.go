package order_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type orderJSON struct {
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

// world is a shop with an admin, a customer and a few products.
type world struct {
	shop     *apptest.Shop
	admin    string
	customer string
	products map[string]string // sku -> id
}

func newWorld(t *testing.T, stock map[string]int) *world {
	t.Helper()
	shop := apptest.Start(t)
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	w := &world{shop: shop, admin: admin, customer: customer, products: map[string]string{}}
	i := 0
	for sku, n := range stock {
		i++
		r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": sku, "name": "Thing " + sku, "price": fmt.Sprintf("%d.25", 10+i), "stock": n}, testkit.Bearer(admin))
		if r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", sku, r.Status, r.Body)
		}
		var p struct{ ID string }
		r.Decode(t, &p)
		w.products[sku] = p.ID
	}
	return w
}

func (w *world) place(t *testing.T, token, method string, lines map[string]int, opts ...testkit.Option) (*testkit.Response, orderJSON) {
	t.Helper()
	items := []map[string]any{}
	for sku, q := range lines {
		items = append(items, map[string]any{"product_id": w.products[sku], "quantity": q})
	}
	r := w.shop.API.Do("POST", "/api/v1/orders", map[string]any{"items": items, "payment_method": method}, append(opts, testkit.Bearer(token))...)
	var o orderJSON
	if r.Status == http.StatusAccepted {
		r.Decode(t, &o)
	}
	return r, o
}

func (w *world) order(t *testing.T, token, id string) orderJSON {
	t.Helper()
	r := w.shop.API.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order: %d %s", r.Status, r.Body)
	}
	var o orderJSON
	r.Decode(t, &o)
	return o
}

// waitStatus waits for the saga to bring the order to status.
func (w *world) waitStatus(t *testing.T, id, status string) orderJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := w.order(t, w.admin, id)
		if o.Status == status {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is %s after 30s, want %s; timeline %+v", id, o.Status, status, o.Timeline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *world) available(t *testing.T, sku string) int {
	t.Helper()
	var p struct{ Available int }
	w.shop.API.Do("GET", "/api/v1/products/"+w.products[sku], nil).Decode(t, &p)
	return p.Available
}
