package catalog

import (
	"context"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
)

// BackfillPage answers a backfill request for the catalog with the page
// after req.After: every product, active or not, with the version
// (updated_at) its live events carry, so a copy keeps whichever is newer.
func (s *Service) BackfillPage(_ context.Context, tx *gorm.DB, req bus.BackfillRequested) (bus.BackfillPage, error) {
	states, err := productStates(tx, req.After, bus.BackfillPageSize+1)
	if err != nil {
		return bus.BackfillPage{}, err
	}
	page := bus.BackfillPage{}
	if len(states) > bus.BackfillPageSize {
		states = states[:bus.BackfillPageSize]
		page.Next = states[len(states)-1].ProductID
	}
	for i := range states {
		states[i].UpdatedAt = states[i].UpdatedAt.UTC()
	}
	page.Event = events.ProductsBackfilled{RequestID: req.RequestID, Products: states, Last: page.Next == ""}
	return page, nil
}
