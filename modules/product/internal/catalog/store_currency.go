package catalog

import (
	"fmt"

	"gorm.io/gorm"
)

// lockCatalogCurrency returns the catalog's recorded currency, recording
// current when there is none, and locks it for the rest of tx.
func lockCatalogCurrency(tx *gorm.DB, current string) (string, error) {
	if err := tx.Exec(`INSERT INTO catalog_currency (currency) VALUES (?) ON CONFLICT DO NOTHING`, current).Error; err != nil {
		return "", fmt.Errorf("record the catalog's currency: %w", err)
	}
	var recorded string
	if err := tx.Raw(`SELECT currency FROM catalog_currency FOR UPDATE`).Scan(&recorded).Error; err != nil {
		return "", fmt.Errorf("read the catalog's currency: %w", err)
	}
	return recorded, nil
}

func setCatalogCurrency(tx *gorm.DB, code string) error {
	if err := tx.Exec(`UPDATE catalog_currency SET currency = ?, recorded_at = now()`, code).Error; err != nil {
		return fmt.Errorf("change the catalog's currency: %w", err)
	}
	return nil
}
