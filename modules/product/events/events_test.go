package events_test

import (
	"flag"
	"testing"
	"time"

	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/testkit/eventcontract"
)

var update = flag.Bool("update", false, "write testdata/*.json from the examples (a compatible change only)")

// TestEvents_MatchTheirGoldenFiles pins each event's wire shape to
// testdata/<event name>.json: the order module decodes exactly this.
func TestEvents_MatchTheirGoldenFiles(t *testing.T) {
	const (
		orderID   = "0195a1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b"
		productID = "0195a1b9-aaaa-7bbb-8ccc-ddddeeeeffff"
	)
	at := time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	eventcontract.Check(t, *update,
		events.ProductCreated{ProductID: productID, SKU: "PEN-BLUE-01", Name: "Blue pen", Price: "2.50", Currency: "EUR", CreatedAt: at},
		events.ProductUpdated{ProductID: productID, Name: "Blue pen, fine", Price: "2.75", Currency: "EUR", Active: true, UpdatedAt: at},
		events.StockReserved{OrderID: orderID, ExpiresAt: at.Add(15 * time.Minute),
			Lines: []events.ReservedLine{{ProductID: productID, Name: "Blue pen", UnitPrice: "2.50", Quantity: 2}}},
		events.StockRejected{OrderID: orderID,
			Short: []events.ShortLine{{ProductID: productID, Requested: 5, Available: 3, Reason: "insufficient_stock"}}},
		events.StockReleased{OrderID: orderID, Reason: "cancelled"},
		events.StockCommitted{OrderID: orderID},
		events.ProductsBackfilled{RequestID: orderID, Last: true, Products: []events.ProductState{
			{ProductID: productID, Name: "Blue pen", Price: "2.50", Active: true, UpdatedAt: at}}},
	)
}
