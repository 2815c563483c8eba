package orders

import (
	"context"
	"time"

	"gorm.io/gorm"

	productevents "github.com/modshop/modshop/modules/product/events"
	userevents "github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/periodic"
)

// The order module keeps copies of what it shows of other modules' data:
// product names and prices (for new orders' lines and the check at
// placement) and customers' names (for staff). Each is kept from the
// owner's events, newest version wins, and is filled on request by a
// backfill the owner publishes (docs/adr/0031-copies-are-backfilled-on-request.md).
const (
	copyProducts  = "products"
	copyCustomers = "customers"
)

// copySources names the module that owns each copy's data.
var copySources = map[string]string{copyProducts: "product", copyCustomers: "user"}

const (
	// backfillCheck is how often a process looks for a copy to ask for.
	backfillCheck = 2 * time.Second
	// backfillStall is how long a backfill may go without a page before
	// it is asked for again: a request published before the owner's queue
	// existed (RabbitMQ) is never answered.
	backfillStall = 10 * time.Second
)

// OnProductCreated keeps a new product in the copy.
func (s *Service) OnProductCreated(_ context.Context, tx *gorm.DB, ev productevents.ProductCreated) error {
	return keepProducts(tx, []productCopy{{ID: ev.ProductID, Name: ev.Name, Price: ev.Price, Active: true, Version: ev.CreatedAt}})
}

// OnProductUpdated keeps a changed product in the copy, unless the copy
// holds a newer version.
func (s *Service) OnProductUpdated(_ context.Context, tx *gorm.DB, ev productevents.ProductUpdated) error {
	return keepProducts(tx, []productCopy{{ID: ev.ProductID, Name: ev.Name, Price: ev.Price, Active: ev.Active, Version: ev.UpdatedAt}})
}

// OnProductsBackfilled keeps a page of the catalog, each product where it
// is newer than the copy's, and records the backfill's progress.
func (s *Service) OnProductsBackfilled(_ context.Context, tx *gorm.DB, ev productevents.ProductsBackfilled) error {
	ps := make([]productCopy, len(ev.Products))
	for i, p := range ev.Products {
		ps[i] = productCopy{ID: p.ProductID, Name: p.Name, Price: p.Price, Active: p.Active, Version: p.UpdatedAt}
	}
	if len(ps) > 0 {
		if err := keepProducts(tx, ps); err != nil {
			return err
		}
	}
	return backfillProgress(tx, copyProducts, ev.RequestID, ev.Last)
}

// OnUserRegistered keeps a new account in the copy.
func (s *Service) OnUserRegistered(_ context.Context, tx *gorm.DB, ev userevents.UserRegistered) error {
	return keepCustomers(tx, []customerCopy{{ID: ev.UserID, Username: ev.Username, DisplayName: ev.DisplayName, Version: ev.RegisteredAt}})
}

// OnUserUpdated keeps a changed account in the copy, unless the copy
// holds a newer version.
func (s *Service) OnUserUpdated(_ context.Context, tx *gorm.DB, ev userevents.UserUpdated) error {
	return keepCustomers(tx, []customerCopy{{ID: ev.UserID, Username: ev.Username, DisplayName: ev.DisplayName, Version: ev.UpdatedAt}})
}

// OnUsersBackfilled keeps a page of the accounts and records the
// backfill's progress.
func (s *Service) OnUsersBackfilled(_ context.Context, tx *gorm.DB, ev userevents.UsersBackfilled) error {
	cs := make([]customerCopy, len(ev.Users))
	for i, u := range ev.Users {
		cs[i] = customerCopy{ID: u.UserID, Username: u.Username, DisplayName: u.DisplayName, Version: u.UpdatedAt}
	}
	if len(cs) > 0 {
		if err := keepCustomers(tx, cs); err != nil {
			return err
		}
	}
	return backfillProgress(tx, copyCustomers, ev.RequestID, ev.Last)
}

// RunBackfills asks for the backfill of each copy that was never filled
// (a new shop, or one upgrading to copies it did not keep before) at
// start and then every backfillCheck, again while one stalls, until ctx
// ends.
func (s *Service) RunBackfills(ctx context.Context) {
	ask := func(ctx context.Context) (int, error) { return s.askBackfills(ctx) }
	if n, err := ask(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("ask for backfills", "err", err)
	} else if n > 0 {
		s.log.Info("ask for backfills", "count", n)
	}
	periodic.Sweep(ctx, backfillCheck, s.log, "ask for backfills", ask)
}

// askBackfills publishes a backfill request for each copy that needs one
// and returns how many it asked for.
func (s *Service) askBackfills(ctx context.Context) (int, error) {
	n := 0
	for _, name := range []string{copyProducts, copyCustomers} {
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			id, ok, err := claimBackfill(tx, name, backfillStall)
			if err != nil || !ok {
				return err
			}
			n++
			return s.pub.Publish(ctx, tx, bus.BackfillRequested{RequestID: id, Source: copySources[name], Requester: "order"})
		})
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// CopyStatus is a copy's backfill state, as staff see it.
type CopyStatus struct {
	Copy   string `json:"copy"`
	Source string `json:"source"`
	// Rows is how many the copy holds.
	Rows int64 `json:"rows"`
	// Filled is when the last page of its latest backfill came; null:
	// the backfill is under way (or not asked for yet).
	Filled      *time.Time `json:"filled_at"`
	RequestID   *string    `json:"request_id"`
	RequestedAt *time.Time `json:"requested_at"`
}

// Copies lists the copies and their backfills.
func (s *Service) Copies(ctx context.Context) ([]CopyStatus, error) {
	rows, err := copyStatuses(ctx, s.db)
	if err != nil {
		return nil, err
	}
	out := make([]CopyStatus, len(rows))
	for i, r := range rows {
		out[i] = CopyStatus{Copy: r.Copy, Source: copySources[r.Copy], Rows: r.Rows, Filled: r.FilledAt, RequestID: r.RequestID, RequestedAt: r.RequestedAt}
	}
	return out, nil
}

// Backfill asks the owner of a copy for its whole current state again (an
// operator rebuilding it): the pages overwrite only what is older, so live
// updates that come meanwhile are kept.
func (s *Service) Backfill(ctx context.Context, name string) (CopyStatus, error) {
	source, ok := copySources[name]
	if !ok {
		return CopyStatus{}, apperr.NotFound("no such copy: products or customers")
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		id, err := restartBackfill(tx, name)
		if err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, bus.BackfillRequested{RequestID: id, Source: source, Requester: "order"})
	})
	if err != nil {
		return CopyStatus{}, err
	}
	all, err := s.Copies(ctx)
	if err != nil {
		return CopyStatus{}, err
	}
	for _, c := range all {
		if c.Copy == name {
			return c, nil
		}
	}
	return CopyStatus{}, apperr.NotFound("no such copy")
}

// Customer is who placed an order, from the copy of the accounts; the
// names are null while the copy does not know the account yet.
type Customer struct {
	ID          string  `json:"id"`
	Username    *string `json:"username"`
	DisplayName *string `json:"display_name"`
}

// addCustomers sets each order's customer from the copy.
func addCustomers(ctx context.Context, db *gorm.DB, orders []Order) error {
	if len(orders) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var ids []string
	for _, o := range orders {
		if !seen[o.UserID] {
			seen[o.UserID] = true
			ids = append(ids, o.UserID)
		}
	}
	cs, err := customersByID(ctx, db, ids)
	if err != nil {
		return err
	}
	byID := make(map[string]customerCopy, len(cs))
	for _, c := range cs {
		byID[c.ID] = c
	}
	for i := range orders {
		o := &orders[i]
		o.Customer = Customer{ID: o.UserID}
		if c, ok := byID[o.UserID]; ok {
			o.Customer.Username, o.Customer.DisplayName = &c.Username, &c.DisplayName
		}
	}
	return nil
}

// checkCopyTotal refuses an order whose lines at the copy's prices come to
// more than an order can hold, before anything is written in tx.
func (s *Service) checkCopyTotal(tx *gorm.DB, lines []OrderLine) error {
	tooLarge, err := copyTotalTooLarge(tx, lines)
	if err != nil {
		return err
	}
	if tooLarge {
		return apperr.InvalidField("items", "the order's total would be more than 99,999,999.99, the most an order can hold")
	}
	return nil
}

// nameOf is a line's name from names, nil when it has none.
func nameOf(names map[string]string, productID string) *string {
	if n, ok := names[productID]; ok {
		return &n
	}
	return nil
}
