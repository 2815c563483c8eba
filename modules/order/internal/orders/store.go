package orders

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

type orderRow struct {
	ID            string
	UserID        string
	Status        Status
	Total         *string
	PaymentMethod string
	PaymentState  string
	CancelReason  string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

const selectOrder = `SELECT id, user_id, status, total_amount::text AS total, payment_method, payment_state, cancel_reason, created_at, updated_at FROM orders`

// lockOrder reads an order for update inside tx; ok is false if it does not exist.
func lockOrder(tx *gorm.DB, id string) (orderRow, bool, error) {
	var rows []orderRow
	if err := tx.Raw(selectOrder+` WHERE id = ? FOR UPDATE`, id).Scan(&rows).Error; err != nil {
		return orderRow{}, false, fmt.Errorf("lock order %s: %w", id, err)
	}
	if len(rows) == 0 {
		return orderRow{}, false, nil
	}
	return rows[0], true, nil
}

func addTimeline(tx *gorm.DB, orderID, step, messageID, detail string) error {
	var mid *string
	if messageID != "" {
		mid = &messageID
	}
	if err := tx.Exec(`INSERT INTO order_timeline (order_id, step, message_id, detail) VALUES (?, ?, ?, ?)`, orderID, step, mid, detail).Error; err != nil {
		return fmt.Errorf("timeline of order %s: %w", orderID, err)
	}
	return nil
}

// loadOrders fills in items and timelines for rows.
func loadOrders(ctx context.Context, db *gorm.DB, rows []orderRow) ([]Order, error) {
	out := make([]Order, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]string, len(rows))
	index := map[string]int{}
	for i, r := range rows {
		ids[i] = r.ID
		index[r.ID] = i
		out[i] = Order{ID: r.ID, UserID: r.UserID, Status: r.Status, Total: r.Total, PaymentMethod: r.PaymentMethod,
			PaymentState: r.PaymentState, CancelReason: r.CancelReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
			Items: []Item{}, Timeline: []TimeEntry{}}
	}
	var items []struct {
		OrderID string
		Item
	}
	if err := db.WithContext(ctx).Raw(`SELECT order_id, product_id, quantity, name, unit_price::text AS unit_price
		FROM order_items WHERE order_id IN ? ORDER BY order_id, product_id`, ids).Scan(&items).Error; err != nil {
		return nil, fmt.Errorf("order items: %w", err)
	}
	for _, it := range items {
		o := &out[index[it.OrderID]]
		o.Items = append(o.Items, it.Item)
	}
	var steps []struct {
		OrderID string
		TimeEntry
	}
	if err := db.WithContext(ctx).Raw(`SELECT order_id, at, step, detail, message_id
		FROM order_timeline WHERE order_id IN ? ORDER BY order_id, id`, ids).Scan(&steps).Error; err != nil {
		return nil, fmt.Errorf("order timeline: %w", err)
	}
	for _, s := range steps {
		o := &out[index[s.OrderID]]
		o.Timeline = append(o.Timeline, s.TimeEntry)
	}
	return out, nil
}
