package product_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit"
)

// TestReturns_RestockOncePerReturnAsAMovementOfTheirOwn: goods that came
// back (order.returned) go back on hand as 'return' movements, once per
// return however often its message is published; on hand stays what the
// movement ledger adds up to.
func TestReturns_RestockOncePerReturnAsAMovementOfTheirOwn(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	_, admin := shop.Admin(t)
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "RET-1", "name": "Return mug", "price": "5.00", "stock": 10}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	var p struct {
		ID string `json:"id"`
	}
	r.Decode(t, &p)
	onHand := func() int64 {
		return testkit.QueryInt(t, db, `SELECT on_hand FROM products.inventory WHERE product_id = $1`, p.ID)
	}
	ctx := context.Background()
	order := uuid.NewString()
	publish := func(evs ...orderevents.OrderReturned) {
		t.Helper()
		for _, ev := range evs {
			if err := shop.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := shop.Publish(ctx, orderevents.OrderPlaced{OrderID: order, UserID: uuid.NewString(),
		Lines: []orderevents.OrderLine{{ProductID: p.ID, Quantity: 3}}, PlacedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the reservation", func() bool {
		return testkit.QueryInt(t, db, `SELECT reserved FROM products.inventory WHERE product_id = $1`, p.ID) == 3
	})
	if err := shop.Publish(ctx, orderevents.OrderConfirmed{OrderID: order}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the sale", func() bool { return onHand() == 7 })

	back := orderevents.OrderReturned{OrderID: order, ReturnID: uuid.NewString(), ReturnedAt: time.Now().UTC(),
		Lines: []orderevents.OrderLine{{ProductID: p.ID, Quantity: 2}, {ProductID: uuid.NewString(), Quantity: 1}}}
	marker := orderevents.OrderReturned{OrderID: order, ReturnID: uuid.NewString(), ReturnedAt: time.Now().UTC(),
		Lines: []orderevents.OrderLine{{ProductID: p.ID, Quantity: 1}}}
	publish(back, back, marker) // the same return twice, as a retrying publisher might send it
	testkit.Eventually(t, "the returns", func() bool { return onHand() >= 10 })
	if got := onHand(); got != 10 {
		t.Fatalf("on hand %d after returns of 2 (twice) and 1, want 10", got)
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM products.stock_movements WHERE product_id = $1 AND kind = 'return'`, p.ID); n != 2 {
		t.Errorf("%d return movements, want 2 (one per return)", n)
	}
	if ledger := testkit.QueryInt(t, db, `SELECT sum(delta) FROM products.stock_movements WHERE product_id = $1`, p.ID); ledger != 10 {
		t.Errorf("the movement ledger adds up to %d, want on hand, 10", ledger)
	}
}
