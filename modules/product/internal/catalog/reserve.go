package catalog

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/periodic"
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

	type stockRow struct {
		ID       string
		Name     string
		Price    string
		Active   bool
		OnHand   int
		Reserved int
	}
	var rows []stockRow
	if len(ids) > 0 {
		err := tx.Raw(`SELECT p.id, p.name, p.price::text AS price, p.active, i.on_hand, i.reserved
			FROM inventory i JOIN products p ON p.id = i.product_id
			WHERE i.product_id IN ? ORDER BY i.product_id FOR UPDATE OF i`, ids).Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("lock stock: %w", err)
		}
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
		res := tx.Exec(`INSERT INTO reservations (order_id, state, reason, expires_at, finished_at) VALUES (?, 'rejected', ?, ?, ?)
			ON CONFLICT (order_id) DO NOTHING`,
			order.OrderID, short[0].Reason, now, now)
		if res.Error != nil {
			return fmt.Errorf("record rejection: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return nil // the order has a reservation already
		}
		return s.pub.Publish(ctx, tx, events.StockRejected{OrderID: order.OrderID, Short: short})
	}

	expires := now.Add(s.cfg.ReservationTTL).Truncate(time.Microsecond)
	reserved, err := insertReservation(tx, order.OrderID, expires, lines)
	if err != nil || !reserved {
		return err
	}
	return s.pub.Publish(ctx, tx, events.StockReserved{OrderID: order.OrderID, Lines: lines, ExpiresAt: expires})
}

// insertReservation records an active reservation of lines, whose stock
// rows tx has locked, and adds their quantities to the reserved stock, in
// one statement. It reports false, having changed nothing, when the order
// has a reservation already: the stock and the lines follow the
// reservation's INSERT, which adds no row then.
func insertReservation(tx *gorm.DB, orderID string, expires time.Time, lines []events.ReservedLine) (bool, error) {
	n := len(lines)
	ids, names, prices, quantities := make([]string, n), make([]string, n), make([]string, n), make([]int, n)
	for i, l := range lines {
		ids[i], names[i], prices[i], quantities[i] = l.ProductID, l.Name, l.UnitPrice, l.Quantity
	}
	res := tx.Exec(`WITH reservation AS (
			INSERT INTO reservations (order_id, state, expires_at) VALUES (?, 'active', ?)
			ON CONFLICT (order_id) DO NOTHING
			RETURNING order_id
		), line AS (
			SELECT * FROM unnest(?::uuid[], ?::text[], ?::numeric[], ?::int[]) AS l (product_id, name, unit_price, quantity)
		), stock AS (
			UPDATE inventory i SET reserved = i.reserved + line.quantity
			  FROM reservation, line
			 WHERE i.product_id = line.product_id
		)
		INSERT INTO reservation_lines (order_id, product_id, name, unit_price, quantity)
		SELECT reservation.order_id, line.product_id, line.name, line.unit_price, line.quantity
		  FROM reservation, line`,
		orderID, expires, array(ids), array(names), array(prices), array(quantities))
	if res.Error != nil {
		return false, fmt.Errorf("insert reservation: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
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
	// Each line leaves the stock and goes in the stock ledger.
	err = tx.Exec(`WITH `+lockedLines+`, sold AS (
			UPDATE inventory i SET on_hand = i.on_hand - line.quantity, reserved = i.reserved - line.quantity
			  FROM line
			 WHERE i.product_id = line.product_id
		)
		INSERT INTO stock_movements (product_id, kind, delta, order_id)
		SELECT product_id, 'sale', -quantity, ? FROM line`, orderID, orderID).Error
	if err != nil {
		return fmt.Errorf("sell reservation %s: %w", orderID, err)
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
	var res []struct{ State, Reason string }
	if err := tx.Raw(`SELECT state, reason FROM reservations WHERE order_id = ? FOR UPDATE`, orderID).Scan(&res).Error; err != nil {
		return false, fmt.Errorf("look up reservation %s: %w", orderID, err)
	}
	if len(res) == 0 || res[0].State != "released" || res[0].Reason != "expired" {
		return false, nil
	}
	var short []string
	err := tx.Raw(`WITH `+lockedLines+`
		SELECT line.product_id FROM line JOIN inventory i ON i.product_id = line.product_id
		 WHERE i.on_hand - i.reserved < line.quantity`, orderID).Scan(&short).Error
	if err != nil {
		return false, fmt.Errorf("check stock for expired reservation %s: %w", orderID, err)
	}
	if len(short) > 0 {
		s.log.Error("an order was confirmed after its reservation expired, and its stock has been sold since: it needs staff",
			"order_id", orderID, "products_short", short)
		return false, nil
	}
	err = tx.Exec(`WITH `+lockedLines+`, sold AS (
			UPDATE inventory i SET on_hand = i.on_hand - line.quantity
			  FROM line
			 WHERE i.product_id = line.product_id
		)
		INSERT INTO stock_movements (product_id, kind, delta, order_id)
		SELECT product_id, 'sale', -quantity, ? FROM line`, orderID, orderID).Error
	if err != nil {
		return false, fmt.Errorf("sell expired reservation %s: %w", orderID, err)
	}
	if err := tx.Exec(`UPDATE reservations SET state = 'committed', reason = 'committed_after_expiry', finished_at = now() WHERE order_id = ?`, orderID).Error; err != nil {
		return false, fmt.Errorf("commit expired reservation %s: %w", orderID, err)
	}
	s.log.Warn("an order was confirmed after its reservation expired; sold from free stock", "order_id", orderID)
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
	res := tx.Exec(`INSERT INTO reservations (order_id, state, reason, expires_at, finished_at) VALUES (?, 'released', ?, ?, ?) ON CONFLICT DO NOTHING`,
		orderID, reason, now, now)
	if res.Error != nil {
		return fmt.Errorf("release: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return nil // nothing was reserved; the tombstone keeps it that way
	}
	_, err := s.release(ctx, tx, orderID, reason)
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
	err = tx.Exec(`WITH `+lockedLines+`
		UPDATE inventory i SET reserved = i.reserved - line.quantity
		  FROM line
		 WHERE i.product_id = line.product_id`, orderID).Error
	if err != nil {
		return false, fmt.Errorf("release reservation %s: %w", orderID, err)
	}
	return true, s.pub.Publish(ctx, tx, events.StockReleased{OrderID: orderID, Reason: reason})
}

// lockedLines is a CTE, "line", of reservation ?'s lines that locks their
// stock rows in product-id order, as Reserve does (MATERIALIZED: it runs
// once and as written, whatever the plan of the statement around it). The
// statement then changes only stock rows that "line" has handed out, so
// rows it has locked already.
const lockedLines = `line AS MATERIALIZED (
			SELECT l.product_id, l.quantity
			  FROM reservation_lines l JOIN inventory i ON i.product_id = l.product_id
			 WHERE l.order_id = ?
			 ORDER BY l.product_id
			   FOR UPDATE OF i
		)`

// finish moves an active reservation to state; ok is false when the
// reservation is not active.
func finish(tx *gorm.DB, orderID, state, reason string) (ok bool, err error) {
	if !isUUID(orderID) {
		return false, fmt.Errorf("invalid order id %q", orderID)
	}
	res := tx.Exec(`UPDATE reservations SET state = ?, reason = ?, finished_at = now() WHERE order_id = ? AND state = 'active'`, state, reason, orderID)
	if res.Error != nil {
		return false, fmt.Errorf("finish reservation: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// ReleaseExpired releases up to limit active reservations past their
// expiry, each in its own transaction, and reports how many it released.
func (s *Service) ReleaseExpired(ctx context.Context, limit int) (int, error) {
	var ids []string
	err := s.db.WithContext(ctx).Raw(`SELECT order_id FROM reservations WHERE state = 'active' AND expires_at < now() ORDER BY expires_at LIMIT ?`, limit).Scan(&ids).Error
	if err != nil {
		return 0, fmt.Errorf("find expired reservations: %w", err)
	}
	released := 0
	for _, id := range ids {
		done := false
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			ok, err := s.release(ctx, tx, id, "expired")
			done = ok
			return err
		})
		if err != nil {
			return released, fmt.Errorf("release expired reservation %s: %w", id, err)
		}
		if done {
			released++
		}
	}
	return released, nil
}

// RunExpiry releases expired reservations every ExpiryInterval until ctx ends.
func (s *Service) RunExpiry(ctx context.Context) {
	periodic.Sweep(ctx, s.cfg.ExpiryInterval, s.log, "release expired reservations", func(ctx context.Context) (int, error) {
		return s.ReleaseExpired(ctx, 100)
	})
}

// array passes s to PostgreSQL as one array parameter; gorm would spread a
// bare slice into a list of parameters.
func array[T any](s []T) pgtype.Array[T] {
	n := int32(len(s)) // #nosec G115 -- one order's lines (at most 50 at placement; a bus message is under 1 GB): far below 2^31
	return pgtype.Array[T]{Elements: s, Dims: []pgtype.ArrayDimension{{Length: n, LowerBound: 1}}, Valid: true}
}
