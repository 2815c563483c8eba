package catalog

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// HoldCurrency records the shop's currency as the catalog's the first time
// the module starts, and refuses a start with another currency while
// products exist: their prices were set in the recorded one, and showing
// them in another would relabel them without converting. An empty catalog
// takes the new currency. Replicas starting at once take turns on the row.
func (s *Service) HoldCurrency(ctx context.Context) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		recorded, err := lockCatalogCurrency(tx, s.cfg.Currency)
		if err != nil {
			return err
		}
		if recorded == s.cfg.Currency {
			return nil
		}
		empty, err := catalogEmpty(ctx, tx)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("MODSHOP_CURRENCY=%s, but the catalog's prices are in %s: "+
				"start with MODSHOP_CURRENCY=%s, or re-price the products and then change the currency "+
				"(docs/operations.md, \"Changing the shop's currency\")", s.cfg.Currency, recorded, recorded)
		}
		s.log.Info("the catalog is empty: its currency changes", "from", recorded, "to", s.cfg.Currency)
		return setCatalogCurrency(tx, s.cfg.Currency)
	})
}
