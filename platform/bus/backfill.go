package bus

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// BackfillRequestedV1 names the request a module publishes when a copy it
// keeps of another module's data is new or must be rebuilt.
const BackfillRequestedV1 = "backfill.requested.v1"

// BackfillRequested asks the module named Source to publish its current
// state, one page at a time: a copy cannot be built from old messages, which
// the bus prunes and a RabbitMQ queue declared late never saw. The bus owns
// it rather than either module because every owner answers the same request
// and every copy asks the same way (docs/adr/0031-copies-are-backfilled-on-request.md).
//
// The owner answers a page with an event of its own that carries, with
// each item, the version (updated_at) a live event of it would carry, so a
// copy applies a page as it applies live events and the newest wins. After
// is "" for the first page; the owner asks itself for each next page with
// the same RequestID, so a large catalog is read in one short transaction
// per page.
type BackfillRequested struct {
	RequestID string `json:"request_id"`
	Source    string `json:"source"`    // the owning module, e.g. "product"
	Requester string `json:"requester"` // who asked, e.g. "order" (for the operator)
	After     string `json:"after"`     // the page's start: the last key of the page before it
}

// EventName is the event's name on the bus.
func (BackfillRequested) EventName() string { return BackfillRequestedV1 }

// BackfillPageSize is how many items an owner puts in one page.
const BackfillPageSize = 500

// BackfillPage is an owner's answer to one request: Event (the owner's page
// event, published) and Next, the key to go on after ("" when this was the
// last page).
type BackfillPage struct {
	Event Event
	Next  string
}

// AnswerBackfills subscribes the owning module source's answer to
// backfill requests under the handler name (its `<module>.on_backfill_requested`):
// requests for other modules are acknowledged and ignored; for source, page
// reads up to BackfillPageSize items after req.After in tx, its event is
// published, and when there are more a request for the next page follows in
// the same transaction.
func AnswerBackfills(b *Bus, handler, source string, c Consumer, page func(ctx context.Context, tx *gorm.DB, req BackfillRequested) (BackfillPage, error)) {
	Handle(b, handler, c, func(ctx context.Context, tx *gorm.DB, req BackfillRequested) error {
		if req.Source != source {
			return nil
		}
		p, err := page(ctx, tx, req)
		if err != nil {
			return fmt.Errorf("backfill %s for %s after %q: %w", source, req.Requester, req.After, err)
		}
		out := []Event{p.Event}
		if p.Next != "" {
			next := req
			next.After = p.Next
			out = append(out, next)
		}
		return b.Publish(ctx, tx, out...)
	})
}
