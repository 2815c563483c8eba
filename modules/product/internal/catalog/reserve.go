package catalog

import (
	"context"
	"fmt"
	"slices"
	"time"

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
// by an early cancel) is left alone.
//
// Rows are locked in product-id order, so concurrent orders that share
// products in different line orders cannot deadlock; the CHECK constraints
// on inventory back the arithmetic.
func (s *Service) Reserve(ctx context.Context, tx *gorm.DB, order orderevents.OrderPlaced) error {
	if !isUUID(order.OrderID) {
		return fmt.Errorf("order.placed with invalid order id %q", order.OrderID)
	}
	var state []string
	if err := tx.Raw(`SELECT state FROM reservations WHERE order_id = ?`, order.OrderID).Scan(&state).Error; err != nil {
		return fmt.Errorf("look up reservation: %w", err)
	}
	if len(state) > 0 {
		return nil
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
		if err := tx.Exec(`INSERT INTO reservations (order_id, state, reason, expires_at, finished_at) VALUES (?, 'rejected', ?, ?, ?)`,
			order.OrderID, short[0].Reason, now, now).Error; err != nil {
			return fmt.Errorf("record rejection: %w", err)
		}
		return s.pub.Publish(ctx, tx, events.StockRejected{OrderID: order.OrderID, Short: short})
	}

	expires := now.Add(s.cfg.ReservationTTL).Truncate(time.Microsecond)
	if err := tx.Exec(`INSERT INTO reservations (order_id, state, expires_at) VALUES (?, 'active', ?)`, order.OrderID, expires).Error; err != nil {
		return fmt.Errorf("insert reservation: %w", err)
	}
	for _, l := range lines {
		if err := tx.Exec(`UPDATE inventory SET reserved = reserved + ? WHERE product_id = ?`, l.Quantity, l.ProductID).Error; err != nil {
			return fmt.Errorf("reserve %s: %w", l.ProductID, err)
		}
		if err := tx.Exec(`INSERT INTO reservation_lines (order_id, product_id, name, unit_price, quantity) VALUES (?, ?, ?, ?::numeric, ?)`,
			order.OrderID, l.ProductID, l.Name, l.UnitPrice, l.Quantity).Error; err != nil {
			return fmt.Errorf("insert reservation line: %w", err)
		}
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
// stock.committed. Anything else (committed, released, rejected, unknown)
// is left as it is: commit after release changes nothing.
func (s *Service) Commit(ctx context.Context, tx *gorm.DB, orderID string) error {
	lines, ok, err := s.finish(tx, orderID, "committed", "")
	if err != nil || !ok {
		return err
	}
	for _, l := range lines {
		if err := tx.Exec(`UPDATE inventory SET on_hand = on_hand - ?, reserved = reserved - ? WHERE product_id = ?`, l.Quantity, l.Quantity, l.ProductID).Error; err != nil {
			return fmt.Errorf("sell %s: %w", l.ProductID, err)
		}
		if err := tx.Exec(`INSERT INTO stock_movements (product_id, kind, delta, order_id) VALUES (?, 'sale', ?, ?)`, l.ProductID, -l.Quantity, orderID).Error; err != nil {
			return fmt.Errorf("record sale: %w", err)
		}
	}
	return s.pub.Publish(ctx, tx, events.StockCommitted{OrderID: orderID})
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
	lines, ok, err := s.finish(tx, orderID, "released", reason)
	if err != nil || !ok {
		return err
	}
	for _, l := range lines {
		if err := tx.Exec(`UPDATE inventory SET reserved = reserved - ? WHERE product_id = ?`, l.Quantity, l.ProductID).Error; err != nil {
			return fmt.Errorf("release %s: %w", l.ProductID, err)
		}
	}
	return s.pub.Publish(ctx, tx, events.StockReleased{OrderID: orderID, Reason: reason})
}

type reservedLine struct {
	ProductID string
	Quantity  int
}

// finish moves an active reservation to state and returns its lines; ok
// is false when the reservation is not active.
func (s *Service) finish(tx *gorm.DB, orderID, state, reason string) ([]reservedLine, bool, error) {
	if !isUUID(orderID) {
		return nil, false, fmt.Errorf("invalid order id %q", orderID)
	}
	res := tx.Exec(`UPDATE reservations SET state = ?, reason = ?, finished_at = now() WHERE order_id = ? AND state = 'active'`, state, reason, orderID)
	if res.Error != nil {
		return nil, false, fmt.Errorf("finish reservation: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, false, nil
	}
	var lines []reservedLine
	if err := tx.Raw(`SELECT product_id, quantity FROM reservation_lines WHERE order_id = ? ORDER BY product_id`, orderID).Scan(&lines).Error; err != nil {
		return nil, false, fmt.Errorf("reservation lines: %w", err)
	}
	// Lock inventory rows in id order, as Reserve does.
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = l.ProductID
	}
	if len(ids) > 0 {
		if err := tx.Exec(`SELECT 1 FROM inventory WHERE product_id IN ? ORDER BY product_id FOR UPDATE`, ids).Error; err != nil {
			return nil, false, fmt.Errorf("lock stock: %w", err)
		}
	}
	return lines, true, nil
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
			lines, ok, err := s.finish(tx, id, "released", "expired")
			if err != nil || !ok {
				return err
			}
			done = true
			for _, l := range lines {
				if err := tx.Exec(`UPDATE inventory SET reserved = reserved - ? WHERE product_id = ?`, l.Quantity, l.ProductID).Error; err != nil {
					return err
				}
			}
			return s.pub.Publish(ctx, tx, events.StockReleased{OrderID: id, Reason: "expired"})
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
