package catalog

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/product/events"
)

// The stock half of the store: inventory, its movements and the
// reservations of the order saga. Functions that take tx run in the
// caller's transaction; stock rows are always locked in product-id order.

// stockRow is a product's stock as a reservation weighs it.
type stockRow struct {
	ID       string
	Name     string
	Price    string
	Active   bool
	OnHand   int
	Reserved int
}

// lockStock reads and locks the stock rows of the products ids, which are
// sorted, in product-id order. Products that do not exist have no row.
func lockStock(tx *gorm.DB, ids []string) ([]stockRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []stockRow
	err := tx.Raw(`SELECT p.id, p.name, p.price::text AS price, p.active, i.on_hand, i.reserved
		FROM inventory i JOIN products p ON p.id = i.product_id
		WHERE i.product_id IN ? ORDER BY i.product_id FOR UPDATE OF i`, ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("lock stock: %w", err)
	}
	return rows, nil
}

// insertRejection records that an order's stock was refused, for reason.
// It reports false, having changed nothing, when the order has a
// reservation already.
func insertRejection(tx *gorm.DB, orderID, reason string, at time.Time) (bool, error) {
	res := tx.Exec(`INSERT INTO reservations (order_id, state, reason, expires_at, finished_at) VALUES (?, 'rejected', ?, ?, ?)
		ON CONFLICT (order_id) DO NOTHING`,
		orderID, reason, at, at)
	if res.Error != nil {
		return false, fmt.Errorf("record rejection: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// insertReservation records an active reservation of lines, whose stock
// rows tx has locked, and adds their quantities to the reserved stock, in
// one statement. It reports false, having changed nothing, when the order
// has a reservation already: the stock and the lines follow the
// reservation's INSERT, which adds no row then.
//
// traceparent is the reserving handler's trace context ("" for none), for
// the expiry sweep to link to.
func insertReservation(tx *gorm.DB, orderID string, expires time.Time, lines []events.ReservedLine, traceparent string) (bool, error) {
	n := len(lines)
	ids, names, prices, quantities := make([]string, n), make([]string, n), make([]string, n), make([]int, n)
	for i, l := range lines {
		ids[i], names[i], prices[i], quantities[i] = l.ProductID, l.Name, l.UnitPrice, l.Quantity
	}
	res := tx.Exec(`WITH reservation AS (
			INSERT INTO reservations (order_id, state, expires_at, traceparent) VALUES (?, 'active', ?, nullif(?, ''))
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
		orderID, expires, traceparent, array(ids), array(names), array(prices), array(quantities))
	if res.Error != nil {
		return false, fmt.Errorf("insert reservation: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// insertTombstone records a released reservation for an order that has
// none, so that its order.placed, arriving after its cancellation,
// reserves nothing. It reports false, having changed nothing, when the
// order has a reservation already.
func insertTombstone(tx *gorm.DB, orderID, reason string, at time.Time) (bool, error) {
	res := tx.Exec(`INSERT INTO reservations (order_id, state, reason, expires_at, finished_at) VALUES (?, 'released', ?, ?, ?) ON CONFLICT DO NOTHING`,
		orderID, reason, at, at)
	if res.Error != nil {
		return false, fmt.Errorf("release: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// sellReserved takes a committed reservation's lines out of the stock, on
// hand and reserved, and writes each in the stock ledger, in one statement.
func sellReserved(tx *gorm.DB, orderID string) error {
	err := tx.Exec(`WITH `+lockedLines+`, sold AS (
			UPDATE inventory i SET on_hand = i.on_hand - line.quantity, reserved = i.reserved - line.quantity
			  FROM line
			 WHERE i.product_id = line.product_id
		)
		INSERT INTO stock_movements (product_id, kind, delta, order_id)
		SELECT product_id, 'sale', -quantity, ? FROM line`, orderID, orderID).Error
	if err != nil {
		return fmt.Errorf("sell reservation %s: %w", orderID, err)
	}
	return nil
}

// reservationState is where a reservation is, and why it got there.
type reservationState struct{ State, Reason string }

// lockReservation reads an order's reservation for update; ok is false
// when the order has none.
func lockReservation(tx *gorm.DB, orderID string) (reservationState, bool, error) {
	var res []reservationState
	if err := tx.Raw(`SELECT state, reason FROM reservations WHERE order_id = ? FOR UPDATE`, orderID).Scan(&res).Error; err != nil {
		return reservationState{}, false, fmt.Errorf("look up reservation %s: %w", orderID, err)
	}
	if len(res) == 0 {
		return reservationState{}, false, nil
	}
	return res[0], true, nil
}

// linesShortOfFreeStock locks a reservation's stock rows and lists the
// products whose free stock is less than its line.
func linesShortOfFreeStock(tx *gorm.DB, orderID string) ([]string, error) {
	var short []string
	err := tx.Raw(`WITH `+lockedLines+`
		SELECT line.product_id FROM line JOIN inventory i ON i.product_id = line.product_id
		 WHERE i.on_hand - i.reserved < line.quantity`, orderID).Scan(&short).Error
	if err != nil {
		return nil, fmt.Errorf("check stock for expired reservation %s: %w", orderID, err)
	}
	return short, nil
}

// sellFromFreeStock takes a released reservation's lines out of on-hand
// stock (they hold nothing reserved any more) and writes each in the stock
// ledger, in one statement.
func sellFromFreeStock(tx *gorm.DB, orderID string) error {
	err := tx.Exec(`WITH `+lockedLines+`, sold AS (
			UPDATE inventory i SET on_hand = i.on_hand - line.quantity
			  FROM line
			 WHERE i.product_id = line.product_id
		)
		INSERT INTO stock_movements (product_id, kind, delta, order_id)
		SELECT product_id, 'sale', -quantity, ? FROM line`, orderID, orderID).Error
	if err != nil {
		return fmt.Errorf("sell expired reservation %s: %w", orderID, err)
	}
	return nil
}

// markCommittedAfterExpiry records that an expired reservation was sold.
func markCommittedAfterExpiry(tx *gorm.DB, orderID string) error {
	if err := tx.Exec(`UPDATE reservations SET state = 'committed', reason = 'committed_after_expiry', finished_at = now() WHERE order_id = ?`, orderID).Error; err != nil {
		return fmt.Errorf("commit expired reservation %s: %w", orderID, err)
	}
	return nil
}

// returnReserved gives a released reservation's lines back to free stock.
func returnReserved(tx *gorm.DB, orderID string) error {
	err := tx.Exec(`WITH `+lockedLines+`
		UPDATE inventory i SET reserved = i.reserved - line.quantity
		  FROM line
		 WHERE i.product_id = line.product_id`, orderID).Error
	if err != nil {
		return fmt.Errorf("release reservation %s: %w", orderID, err)
	}
	return nil
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

// expiredReservation is an active reservation past its expiry, with the
// trace context it was made in ("" for none).
type expiredReservation struct {
	OrderID     string
	Traceparent string
}

// expiredReservations lists up to limit active reservations past their
// expiry, the oldest first.
func expiredReservations(ctx context.Context, db *gorm.DB, limit int) ([]expiredReservation, error) {
	var rows []expiredReservation
	err := db.WithContext(ctx).Raw(`SELECT order_id, coalesce(traceparent, '') AS traceparent FROM reservations
		WHERE state = 'active' AND expires_at < now() ORDER BY expires_at LIMIT ?`, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("find expired reservations: %w", err)
	}
	return rows, nil
}

// changeOnHand adds delta to a product's on-hand stock unless that would
// fall below what is reserved or beyond maxOnHand; it reports whether it
// changed it (false too for a product that does not exist).
func changeOnHand(tx *gorm.DB, id string, delta int) (bool, error) {
	res := tx.Exec(`UPDATE inventory SET on_hand = on_hand + ?
		WHERE product_id = ? AND on_hand::bigint + ? >= reserved AND on_hand::bigint + ? <= ?`, delta, id, delta, delta, maxOnHand)
	if res.Error != nil {
		return false, fmt.Errorf("change stock: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// inventoryOf reads a product's stock; ok is false if it has none.
func inventoryOf(tx *gorm.DB, id string) (Inventory, bool, error) {
	var inv []Inventory
	if err := tx.Raw(`SELECT on_hand, reserved FROM inventory WHERE product_id = ?`, id).Scan(&inv).Error; err != nil {
		return Inventory{}, false, err
	}
	if len(inv) == 0 {
		return Inventory{}, false, nil
	}
	return inv[0], true, nil
}

// recordMovement writes a change of on-hand stock in the stock ledger.
func recordMovement(tx *gorm.DB, productID, kind string, delta int, reason string) error {
	return tx.Exec(`INSERT INTO stock_movements (product_id, kind, delta, reason) VALUES (?, ?, ?, ?)`, productID, kind, delta, reason).Error
}

// array passes s to PostgreSQL as one array parameter; gorm would spread a
// bare slice into a list of parameters.
func array[T any](s []T) pgtype.Array[T] {
	n := int32(len(s)) // #nosec G115 -- one order's lines (at most 50 at placement; a bus message is under 1 GB): far below 2^31
	return pgtype.Array[T]{Elements: s, Dims: []pgtype.ArrayDimension{{Length: n, LowerBound: 1}}, Valid: true}
}
