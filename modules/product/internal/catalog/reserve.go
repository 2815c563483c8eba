package catalog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/periodic"
	"github.com/modshop/modshop/platform/telemetry"
)

// maxLineQuantity bounds one line; more is a mistake, not an order.
const maxLineQuantity = 10_000

// Reserve reserves every line of an order or none, in tx, and publishes
// stock.reserved or stock.rejected. It is idempotent per order: an order
// that already has a reservation (of any state, including a tombstone left
// by an early cancel) is left alone. The reservation's INSERT finds that
// out (ON CONFLICT DO NOTHING), which saves the look-up every new order
// would pay for; a repeat only locks its products for a moment in vain.
//
// Rows are locked in product-id order, so concurrent orders that share
// products in different line orders cannot deadlock; the CHECK constraints
// on inventory back the arithmetic. The statements do not grow with the
// lines: lock, write, publish.
func (s *Service) Reserve(ctx context.Context, tx *gorm.DB, order orderevents.OrderPlaced) error {
	if !isUUID(order.OrderID) {
		return fmt.Errorf("order.placed with invalid order id %q", order.OrderID)
	}
	wanted, short := mergeLines(order.Lines)
	ids := make([]string, 0, len(wanted))
	for id := range wanted {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	rows, err := lockStock(tx, ids)
	if err != nil {
		return err
	}
	found := map[string]stockRow{}
	for _, r := range rows {
		found[r.ID] = r
	}
	var lines []events.ReservedLine
	for _, id := range ids {
		q := wanted[id]
		r, ok := found[id]
		switch {
		case !ok:
			short = append(short, events.ShortLine{ProductID: id, Requested: q, Reason: "unknown_product"})
		case !r.Active:
			short = append(short, events.ShortLine{ProductID: id, Requested: q, Reason: "inactive_product"})
		case r.OnHand-r.Reserved < q:
			short = append(short, events.ShortLine{ProductID: id, Requested: q, Available: r.OnHand - r.Reserved, Reason: "insufficient_stock"})
		default:
			lines = append(lines, events.ReservedLine{ProductID: id, Name: r.Name, UnitPrice: r.Price, Quantity: q})
		}
	}
	now := s.now().UTC()
	if len(short) > 0 || len(lines) == 0 {
		if len(short) == 0 {
			short = []events.ShortLine{{Reason: "empty_order"}}
		}
		recorded, err := insertRejection(tx, order.OrderID, short[0].Reason, now)
		if err != nil || !recorded {
			return err // recorded is false: the order has a reservation already
		}
		return s.pub.Publish(ctx, tx, events.StockRejected{OrderID: order.OrderID, Short: short})
	}

	expires := now.Add(s.cfg.ReservationTTL).Truncate(time.Microsecond)
	// The expiry sweep, should it release the reservation, links to this trace.
	reserved, err := insertReservation(tx, order.OrderID, expires, lines, telemetry.Traceparent(ctx))
	if err != nil || !reserved {
		return err
	}
	return s.pub.Publish(ctx, tx, events.StockReserved{OrderID: order.OrderID, Lines: lines, ExpiresAt: expires})
}

// mergeLines sums quantities per product and sets aside lines that cannot
// be valid whatever the stock.
func mergeLines(in []orderevents.OrderLine) (map[string]int, []events.ShortLine) {
	wanted := map[string]int{}
	var short []events.ShortLine
	for _, l := range in {
		switch {
		case !isUUID(l.ProductID):
			short = append(short, events.ShortLine{ProductID: l.ProductID, Requested: l.Quantity, Reason: "unknown_product"})
		case l.Quantity <= 0 || l.Quantity > maxLineQuantity || wanted[l.ProductID]+l.Quantity > maxLineQuantity:
			short = append(short, events.ShortLine{ProductID: l.ProductID, Requested: l.Quantity, Reason: "invalid_quantity"})
		default:
			wanted[l.ProductID] += l.Quantity
		}
	}
	return wanted, short
}

// Commit turns an active reservation into a sale and publishes
// stock.committed. A reservation released because it expired is sold
// after all when its stock is still there (commitAfterExpiry). Anything
// else (committed, released by a cancel, rejected, unknown) is left as it
// is: commit after release changes nothing.
func (s *Service) Commit(ctx context.Context, tx *gorm.DB, orderID string) error {
	ok, err := finish(tx, orderID, "committed", "")
	if err != nil {
		return err
	}
	if !ok {
		if ok, err = s.commitAfterExpiry(ctx, tx, orderID); err != nil || !ok {
			return err
		}
		return s.pub.Publish(ctx, tx, events.StockCommitted{OrderID: orderID})
	}
	if err := sellReserved(tx, orderID); err != nil {
		return err
	}
	return s.pub.Publish(ctx, tx, events.StockCommitted{OrderID: orderID})
}

// commitAfterExpiry sells a reservation that expired before its order was
// confirmed, if every line's stock is still free, and reports whether it
// did. The expiry is a backstop for an order side that never answers; an
// outage longer than the reservation's lifetime (the database down, the
// order module's group retrying) lets it release a reservation whose order
// then confirms: the customer has paid, so the sale goes ahead from free
// stock, never below it (the inventory rows are locked in product-id
// order, as Reserve locks them). Stock sold meanwhile is logged at ERROR:
// a confirmed order the shop cannot fill needs staff.
func (s *Service) commitAfterExpiry(ctx context.Context, tx *gorm.DB, orderID string) (bool, error) {
	res, ok, err := lockReservation(tx, orderID)
	if err != nil {
		return false, err
	}
	if !ok || res.State != "released" || res.Reason != "expired" {
		return false, nil
	}
	short, err := linesShortOfFreeStock(tx, orderID)
	if err != nil {
		return false, err
	}
	if len(short) > 0 {
		s.log.ErrorContext(ctx, "an order was confirmed after its reservation expired, and its stock has been sold since: it needs staff",
			"order_id", orderID, "products_short", short)
		return false, nil
	}
	if err := sellFromFreeStock(tx, orderID); err != nil {
		return false, err
	}
	if err := markCommittedAfterExpiry(tx, orderID); err != nil {
		return false, err
	}
	s.log.WarnContext(ctx, "an order was confirmed after its reservation expired; sold from free stock", "order_id", orderID)
	return true, nil
}

// Release gives an active reservation's stock back and publishes
// stock.released. A committed one is left alone (release after commit
// changes nothing). An order with no reservation yet gets a tombstone, so
// an order.placed that arrives after its cancellation reserves nothing.
func (s *Service) Release(ctx context.Context, tx *gorm.DB, orderID, reason string) error {
	if !isUUID(orderID) {
		return fmt.Errorf("release with invalid order id %q", orderID)
	}
	now := s.now().UTC()
	tombstone, err := insertTombstone(tx, orderID, reason, now)
	if err != nil || tombstone {
		return err // a tombstone: nothing was reserved, and it keeps it that way
	}
	_, err = s.release(ctx, tx, orderID, reason)
	return err
}

// release moves an active reservation to released, gives its stock back
// and publishes stock.released; it leaves any other reservation alone and
// reports whether it released.
func (s *Service) release(ctx context.Context, tx *gorm.DB, orderID, reason string) (bool, error) {
	ok, err := finish(tx, orderID, "released", reason)
	if err != nil || !ok {
		return false, err
	}
	if err := returnReserved(tx, orderID); err != nil {
		return false, err
	}
	return true, s.pub.Publish(ctx, tx, events.StockReleased{OrderID: orderID, Reason: reason})
}

// ReleaseExpired releases up to limit active reservations past their
// expiry, each in its own transaction, and reports how many it released.
func (s *Service) ReleaseExpired(ctx context.Context, limit int) (int, error) {
	expired, err := expiredReservations(ctx, s.db, limit)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, r := range expired {
		done, err := s.releaseExpired(ctx, r)
		if err != nil {
			return released, fmt.Errorf("release expired reservation %s: %w", r.OrderID, err)
		}
		if done {
			released++
		}
	}
	return released, nil
}

// releaseExpired releases one expired reservation in its own transaction
// and reports whether it did (false: it was committed or released
// meanwhile). The release is a trace of its own: a root span "product.sweep
// expiry" linked to the trace the reservation was made in (the order's),
// whatever ctx holds; its statements and its stock.released are children.
// The order's trace ended long ago: the link ties the two together
// without stretching it over the reservation's lifetime.
func (s *Service) releaseExpired(ctx context.Context, r expiredReservation) (released bool, err error) {
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.String(attrOrderID, r.OrderID))}
	if link, ok := telemetry.LinkTo(r.Traceparent); ok {
		opts = append(opts, trace.WithLinks(link))
	}
	ctx, span := tracer.Start(ctx, "product.sweep expiry", opts...)
	defer func() {
		span.SetAttributes(attribute.Bool(attrReleased, released))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ok, err := s.release(ctx, tx, r.OrderID, "expired")
		released = ok
		return err
	})
	return released && err == nil, err
}

var tracer = telemetry.Tracer("product")

// Span attributes of the expiry sweep's spans.
const (
	attrOrderID  = "modshop.order.id"
	attrReleased = "modshop.reservation.released" // false: committed or released meanwhile
)

// RunExpiry releases expired reservations every ExpiryInterval until ctx ends.
func (s *Service) RunExpiry(ctx context.Context) {
	periodic.Sweep(ctx, s.cfg.ExpiryInterval, s.log, "release expired reservations", func(ctx context.Context) (int, error) {
		return s.ReleaseExpired(ctx, 100)
	})
}
