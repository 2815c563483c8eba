package accounts

import (
	"context"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/bus"
)

// BackfillPage answers a backfill request for the accounts with the page
// after req.After, each with the version (updated_at) user.updated carries.
func (s *Service) BackfillPage(_ context.Context, tx *gorm.DB, req bus.BackfillRequested) (bus.BackfillPage, error) {
	states, err := userStates(tx, req.After, bus.BackfillPageSize+1)
	if err != nil {
		return bus.BackfillPage{}, err
	}
	page := bus.BackfillPage{}
	if len(states) > bus.BackfillPageSize {
		states = states[:bus.BackfillPageSize]
		page.Next = states[len(states)-1].UserID
	}
	for i := range states {
		states[i].UpdatedAt = states[i].UpdatedAt.UTC()
	}
	page.Event = events.UsersBackfilled{RequestID: req.RequestID, Users: states, Last: page.Next == ""}
	return page, nil
}
