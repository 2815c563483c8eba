package catalog

import (
	"fmt"

	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
)

// restockReturned writes a return's lines in the stock ledger and adds
// those it wrote to on hand, in one statement.
func restockReturned(tx *gorm.DB, ev orderevents.OrderReturned) error {
	products := make([]string, len(ev.Lines))
	quantities := make([]int, len(ev.Lines))
	for i, l := range ev.Lines {
		products[i], quantities[i] = l.ProductID, l.Quantity
	}
	err := tx.Exec(`
		WITH moved AS (
			INSERT INTO stock_movements (product_id, kind, delta, order_id, return_id)
			SELECT l.product_id, 'return', l.quantity, $1, $2
			  FROM unnest($3::uuid[], $4::int[]) AS l(product_id, quantity) JOIN inventory i USING (product_id)
			ON CONFLICT (return_id, product_id) WHERE kind = 'return' DO NOTHING
			RETURNING product_id, delta
		)
		UPDATE inventory i SET on_hand = i.on_hand + moved.delta FROM moved WHERE i.product_id = moved.product_id`,
		ev.OrderID, ev.ReturnID, array(products), array(quantities)).Error
	if err != nil {
		return fmt.Errorf("restock return %s of order %s: %w", ev.ReturnID, ev.OrderID, err)
	}
	return nil
}
