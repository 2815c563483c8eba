package orders

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// markShipped records a shipment of an unfulfilled order and returns its
// time.
func markShipped(tx *gorm.DB, id string, sh Shipment) (time.Time, error) {
	at := time.Now().UTC().Truncate(time.Microsecond)
	err := tx.Exec(`UPDATE orders SET fulfilment_state = 'shipped', carrier = ?, tracking_number = ?, shipped_at = ?, updated_at = ?
		WHERE id = ? AND fulfilment_state = 'unfulfilled'`, sh.Carrier, sh.TrackingNumber, at, at, id).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("ship order %s: %w", id, err)
	}
	return at, nil
}

// markDelivered records the delivery of an order and returns its time.
func markDelivered(tx *gorm.DB, id string) (time.Time, error) {
	at := time.Now().UTC().Truncate(time.Microsecond)
	err := tx.Exec(`UPDATE orders SET fulfilment_state = 'delivered', delivered_at = ?, updated_at = ?
		WHERE id = ? AND fulfilment_state <> 'delivered'`, at, at, id).Error
	if err != nil {
		return time.Time{}, fmt.Errorf("deliver order %s: %w", id, err)
	}
	return at, nil
}
