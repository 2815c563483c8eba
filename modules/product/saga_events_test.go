package product_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	orderevents "github.com/modshop/modshop/modules/order/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// TestSagaEvents_ReserveOnceReleaseOnCancel drives the product module's
// handlers through the real bus: order.placed delivered twice reserves
// once, order.cancelled gives the stock back, a late order.confirmed sells
// nothing. The storefront's available stock shows each step, and the
// module's stock.reserved and stock.released say what it did.
func TestSagaEvents_ReserveOnceReleaseOnCancel(t *testing.T) {
	t.Parallel()
	shop := startProduct(t, func(m *moduletest.Module) {
		moduletest.Record[productevents.StockReserved](m.Events)
		moduletest.Record[productevents.StockReleased](m.Events)
	})
	_, admin := shop.Admin(t)
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "SAGA-1", "name": "Saga mug", "price": "7.50", "stock": 10}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	var p struct {
		ID        string `json:"id"`
		Available int    `json:"available"`
	}
	r.Decode(t, &p)
	available := func() int {
		var got struct {
			Available int `json:"available"`
		}
		shop.API.Do("GET", "/api/v1/products/"+p.ID, nil).Decode(t, &got)
		return got.Available
	}
	ctx := context.Background()
	placed := orderevents.OrderPlaced{OrderID: uuid.NewString(), UserID: uuid.NewString(),
		Lines: []orderevents.OrderLine{{ProductID: p.ID, Quantity: 3}}, PlacedAt: time.Now()}
	for range 2 { // two messages for one order, as a retrying publisher might send
		if err := shop.Publish(ctx, placed); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "the reservation", func() bool { return available() == 7 })
	reserved := moduletest.WaitFor(t, shop.Events, "stock.reserved of the order", func(ev productevents.StockReserved) bool { return ev.OrderID == placed.OrderID })
	if len(reserved.Lines) != 1 || reserved.Lines[0].ProductID != p.ID || reserved.Lines[0].Quantity != 3 || reserved.Lines[0].UnitPrice != "7.50" {
		t.Errorf("stock.reserved = %+v, want 3 of the mug at 7.50", reserved)
	}

	// A second order, then a marker order behind the duplicates, so that we
	// know the duplicate was handled before we look.
	marker := orderevents.OrderPlaced{OrderID: uuid.NewString(), UserID: uuid.NewString(),
		Lines: []orderevents.OrderLine{{ProductID: p.ID, Quantity: 1}}, PlacedAt: time.Now()}
	if err := shop.Publish(ctx, marker); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the marker order", func() bool { return available() == 6 })

	if err := shop.Publish(ctx, orderevents.OrderCancelled{OrderID: placed.OrderID, Reason: "customer"}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the release", func() bool { return available() == 9 })
	released := moduletest.WaitFor(t, shop.Events, "stock.released of the cancelled order", func(ev productevents.StockReleased) bool { return ev.OrderID == placed.OrderID })
	if released.Reason != "cancelled" {
		t.Errorf("stock.released reason %q, want cancelled", released.Reason)
	}
	if err := shop.Publish(ctx, orderevents.OrderConfirmed{OrderID: placed.OrderID}); err != nil {
		t.Fatal(err)
	}
	if err := shop.Publish(ctx, orderevents.OrderConfirmed{OrderID: marker.OrderID}); err != nil {
		t.Fatal(err)
	}
	var staffView struct {
		Inventory struct {
			OnHand   int `json:"on_hand"`
			Reserved int `json:"reserved"`
		} `json:"inventory"`
	}
	testkit.Eventually(t, "the marker's sale", func() bool {
		shop.API.Do("GET", "/api/v1/products/"+p.ID, nil, testkit.Bearer(admin)).Decode(t, &staffView)
		return staffView.Inventory.OnHand == 9
	})
	if staffView.Inventory.Reserved != 0 || available() != 9 {
		t.Fatalf("after cancel + late confirm of one order and confirm of another: %+v, available %d; want on hand 9, reserved 0, available 9",
			staffView.Inventory, available())
	}
}
