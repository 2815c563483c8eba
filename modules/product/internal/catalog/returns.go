package catalog

import (
	"context"
	"slices"

	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
)

// Restock puts the goods of a return (order.returned) back on hand, each
// line a movement of kind 'return' in the stock ledger, once per return and
// product however often the message comes. The stock rows are locked in
// product-id order, as Reserve locks them. A product deleted since has
// nothing to come back to (logged).
func (s *Service) Restock(ctx context.Context, tx *gorm.DB, ev orderevents.OrderReturned) error {
	ids := make([]string, 0, len(ev.Lines))
	for _, l := range ev.Lines {
		ids = append(ids, l.ProductID)
	}
	slices.Sort(ids)
	rows, err := lockStock(tx, ids)
	if err != nil {
		return err
	}
	if len(rows) < len(ids) {
		s.log.WarnContext(ctx, "goods came back for products that no longer exist; not restocked",
			"order_id", ev.OrderID, "return_id", ev.ReturnID, "products", len(ids)-len(rows))
	}
	return restockReturned(tx, ev)
}
