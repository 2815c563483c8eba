package events_test

import (
	"flag"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit/eventcontract"
)

var update = flag.Bool("update", false, "write testdata/*.json from the examples (a compatible change only)")

var at = time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)

const (
	orderID   = "0195a1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b"
	userID    = "0195a1c0-1111-7222-8333-444455556666"
	productID = "0195a1b9-aaaa-7bbb-8ccc-ddddeeeeffff"
)

// TestEvents_MatchTheirGoldenFiles pins each event's wire shape to
// testdata/<event name>.json: the order saga's consumers in the product and
// payment modules decode exactly this.
func TestEvents_MatchTheirGoldenFiles(t *testing.T) {
	eventcontract.Check(t, *update,
		events.OrderPlaced{OrderID: orderID, UserID: userID, PlacedAt: at,
			Lines: []events.OrderLine{{ProductID: productID, Quantity: 2}}},
		events.OrderConfirmed{OrderID: orderID},
		events.OrderCancelled{OrderID: orderID, Reason: "payment_failed"},
		events.OrderRejected{OrderID: orderID, Reason: "insufficient_stock"},
		events.PaymentRequested{OrderID: orderID, UserID: userID, Amount: "42.50", Currency: "EUR", PaymentMethod: "pm_card_visa", RequestedAt: at},
		events.RefundRequested{OrderID: orderID, Reason: "damaged in transit",
			RefundID: "0195a1c3-0000-7111-8222-333344445555", Amount: "12.50"},
		events.OrderShipped{OrderID: orderID, UserID: userID, Carrier: "DHL", TrackingNumber: "00340434161234567890", ShippedAt: at},
		events.OrderDelivered{OrderID: orderID, UserID: userID, DeliveredAt: at},
		events.OrderReturned{OrderID: orderID, ReturnID: "0195a1c4-0000-7111-8222-333344445555", ReturnedAt: at,
			Lines: []events.OrderLine{{ProductID: productID, Quantity: 1}}},
	)
}

// Deliberately changed copies of OrderPlaced, as a careless edit would
// leave it, checked against its real golden file.
type (
	placedWithoutUser struct {
		OrderID  string             `json:"order_id"`
		Lines    []events.OrderLine `json:"lines"`
		PlacedAt time.Time          `json:"placed_at"`
	}
	placedWithTextQuantities struct {
		OrderID  string     `json:"order_id"`
		UserID   string     `json:"user_id"`
		Lines    []textLine `json:"lines"`
		PlacedAt time.Time  `json:"placed_at"`
	}
	textLine struct {
		ProductID string `json:"product_id"`
		Quantity  string `json:"quantity"`
	}
	placedWithNote struct {
		events.OrderPlaced
		Note string `json:"note"`
	}
)

func (placedWithoutUser) EventName() string        { return events.OrderPlacedV1 }
func (placedWithTextQuantities) EventName() string { return events.OrderPlacedV1 }

func TestEvents_GoldenFileTellsABreakingChangeFromACompatibleOne(t *testing.T) {
	golden, err := os.ReadFile("testdata/order.placed.v1.json")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		changed  eventcontract.Event
		breaking bool
	}{
		{"user_id removed", placedWithoutUser{OrderID: orderID, PlacedAt: at, Lines: []events.OrderLine{{ProductID: productID, Quantity: 2}}}, true},
		{"quantity retyped", placedWithTextQuantities{OrderID: orderID, UserID: userID, PlacedAt: at, Lines: []textLine{{productID, "2"}}}, true},
		{"optional note added", placedWithNote{OrderPlaced: events.OrderPlaced{OrderID: orderID, UserID: userID, PlacedAt: at,
			Lines: []events.OrderLine{{ProductID: productID, Quantity: 2}}}, Note: "gift"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changes, err := eventcontract.Compare(golden, c.changed)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) == 0 {
				t.Fatal("the golden file did not notice the change")
			}
			breaking := slices.ContainsFunc(changes, eventcontract.Change.Breaking)
			if breaking != c.breaking {
				t.Errorf("breaking %v, want %v: %v", breaking, c.breaking, changes)
			}
		})
	}
}
