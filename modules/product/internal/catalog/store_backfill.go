package catalog

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/product/events"
)

// productStates reads up to limit products after the id after ("" from the
// first), in id order, as a backfill page carries them: a keyset page, so
// each page costs the same however large the catalog.
func productStates(tx *gorm.DB, after string, limit int) ([]events.ProductState, error) {
	var rows []events.ProductState
	err := tx.Raw(`SELECT id AS product_id, name, price::text AS price, active, updated_at FROM products
		WHERE id > coalesce(nullif(?, '')::uuid, '00000000-0000-0000-0000-000000000000') ORDER BY id LIMIT ?`, after, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("products after %q: %w", after, err)
	}
	return rows, nil
}
