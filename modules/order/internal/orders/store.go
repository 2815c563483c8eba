package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/cursor"
)

type orderRow struct {
	ID            string
	UserID        string
	Status        Status
	Total         *string
	PaymentMethod string
	PaymentState  PaymentState
	CancelReason  string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Traceparent is the trace context the order was placed in; nil when
	// it was placed untraced.
	Traceparent *string
	// PaymentRequestedAt is when the order asked for its payment.
	PaymentRequestedAt *time.Time
	RefundedAmount     string
	RefundState        RefundState
	// Currency is the order's; nil for orders placed before it was kept.
	Currency *string
	ShippingColumns
}

// ShippingColumns (exported: gorm scans only exported embedded structs)
// are an order's shipping method, address (all nil for
// pickup), subtotal and fulfilment.
type ShippingColumns struct {
	Subtotal                                       *string
	ShippingMethod, ShippingLabel, ShippingPrice   string
	ShipName, ShipLine1, ShipLine2, ShipPostalCode *string
	ShipCity, ShipCountry                          *string
	FulfilmentState                                FulfilmentState
	Carrier, TrackingNumber                        *string
	ShippedAt, DeliveredAt                         *time.Time
}

// orderColumns are an order's columns as orderRow reads them.
const orderColumns = `id, user_id, status, total_amount::text AS total, payment_method, payment_state, cancel_reason, created_at, updated_at,
	traceparent, payment_requested_at, currency, refunded_amount::text AS refunded_amount,
	CASE WHEN refunded_amount = 0 THEN 'none' WHEN refunded_amount < total_amount THEN 'partly_refunded' ELSE 'refunded' END AS refund_state,
	subtotal_amount::text AS subtotal, shipping_method, shipping_label, shipping_price::text AS shipping_price,
	ship_name, ship_line1, ship_line2, ship_postal_code, ship_city, ship_country,
	fulfilment_state, carrier, tracking_number, shipped_at, delivered_at`

const selectOrder = `SELECT ` + orderColumns + ` FROM orders`

// newOrder is a pending order to write: the order, its lines, the first
// entry of its timeline and, when it has one, its idempotency key.
type newOrder struct {
	ID, UserID, PaymentMethod string
	IdempotencyKey            string // "" for none
	RequestHash               []byte
	Lines                     []OrderLine
	Detail                    string // of the timeline's "placed" entry
	PlacedAt, Deadline        time.Time
	Traceparent               string // "" for none
	Currency                  string
	Shipping                  ShippingMethod
	Address                   *Address // nil for pickup
}

// insertOrder writes o in one statement and returns what it wrote, with
// the names its lines took from the product copy and the customer's copy. With an idempotency key that is taken
// already it writes nothing and ok is false; a request racing with the
// same key waits for the other to commit or roll back (ON CONFLICT).
//
// In the statement, req names the parameters; new_key claims the key (no
// row when there is none or it is taken); placed writes the order when
// there is no key or new_key claimed it; the lines (named from the
// product copy) and the first timeline entry are written for the order
// placed, so for no order when the key was taken. The parameters are numbered ($1, ...) because gorm would
// spread a slice given to a ? into a list of parameters.
func insertOrder(tx *gorm.DB, o newOrder) (placed placedOrder, ok bool, err error) {
	products := make([]string, len(o.Lines))
	quantities := make([]int, len(o.Lines))
	for i, l := range o.Lines {
		products[i], quantities[i] = l.ProductID, l.Quantity
	}
	a := o.Address
	if a == nil {
		a = &Address{}
	}
	var rows []struct {
		Order       orderRow `gorm:"embedded"`
		At          time.Time
		Names       string
		Username    *string
		DisplayName *string
	}
	err = tx.Raw(`
		WITH req AS (
			SELECT $1::uuid AS id, $2::uuid AS user_id, $3::text AS key, $4::bytea AS request_hash,
			       $5::text AS payment_method, $6::timestamptz AS placed_at, $7::timestamptz AS deadline_at, $8::text AS detail,
			       nullif($11::text, '') AS traceparent, $12::text AS currency,
			       $13::text AS shipping_method, $14::text AS shipping_label, $15::numeric AS shipping_price,
			       nullif($16::text, '') AS ship_name, nullif($16::text, '') IS NOT NULL AS has_address,
			       $17::text AS ship_line1, $18::text AS ship_line2, $19::text AS ship_postal_code, $20::text AS ship_city, $21::text AS ship_country
		), new_key AS (
			INSERT INTO idempotency_keys (user_id, key, request_hash, order_id)
			SELECT user_id, key, request_hash, id FROM req WHERE key <> ''
			ON CONFLICT DO NOTHING
			RETURNING order_id
		), placed AS (
			INSERT INTO orders (id, user_id, status, payment_method, idempotency_key, deadline_at, created_at, updated_at, traceparent, currency,
			                    shipping_method, shipping_label, shipping_price,
			                    ship_name, ship_line1, ship_line2, ship_postal_code, ship_city, ship_country)
			SELECT id, user_id, 'pending', payment_method, nullif(key, ''), deadline_at, placed_at, placed_at, traceparent, currency,
			       shipping_method, shipping_label, shipping_price, ship_name,
			       CASE WHEN has_address THEN ship_line1 END, CASE WHEN has_address THEN ship_line2 END,
			       CASE WHEN has_address THEN ship_postal_code END, CASE WHEN has_address THEN ship_city END,
			       CASE WHEN has_address THEN ship_country END
			  FROM req
			 WHERE key = '' OR EXISTS (SELECT FROM new_key)
			RETURNING `+orderColumns+`
		), lines AS (
			INSERT INTO order_items (order_id, product_id, quantity, name)
			SELECT placed.id, l.product_id, l.quantity, c.name
			  FROM placed, unnest($9::uuid[], $10::int[]) AS l(product_id, quantity)
			  LEFT JOIN product_copies c ON c.id = l.product_id
			RETURNING product_id, name
		), first_entry AS (
			INSERT INTO order_timeline (order_id, step, detail)
			SELECT placed.id, 'placed', req.detail FROM placed, req
			RETURNING at
		)
		SELECT placed.*, first_entry.at,
		       (SELECT coalesce(json_object_agg(product_id, name) FILTER (WHERE name IS NOT NULL), '{}') FROM lines)::text AS names,
		       cc.username, cc.display_name
		  FROM placed CROSS JOIN first_entry LEFT JOIN customer_copies cc ON cc.id = placed.user_id`,
		o.ID, o.UserID, o.IdempotencyKey, o.RequestHash, o.PaymentMethod, o.PlacedAt, o.Deadline, o.Detail,
		products, quantities, o.Traceparent, o.Currency, o.Shipping.Code, o.Shipping.Label, o.Shipping.Price,
		a.Name, a.Line1, a.Line2, a.PostalCode, a.City, a.Country).Scan(&rows).Error
	if err != nil {
		return placedOrder{}, false, fmt.Errorf("insert order %s: %w", o.ID, err)
	}
	if len(rows) == 0 {
		return placedOrder{}, false, nil
	}
	r := rows[0]
	p := placedOrder{row: r.Order, at: r.At, customer: Customer{ID: r.Order.UserID, Username: r.Username, DisplayName: r.DisplayName}}
	if r.Username == nil {
		p.customer.DisplayName = nil
	}
	if err := json.Unmarshal([]byte(r.Names), &p.names); err != nil {
		return placedOrder{}, false, fmt.Errorf("insert order %s: names of its lines: %w", o.ID, err)
	}
	return p, true, nil
}

// placedOrder is what insertOrder wrote: the order's row, the time of its
// "placed" entry, its lines' names by product id (from the product copy;
// a product the copy does not know has none yet) and its customer (from
// the customer copy).
type placedOrder struct {
	row      orderRow
	at       time.Time
	names    map[string]string
	customer Customer
}

// keyUse is what an idempotency key was first used for.
type keyUse struct {
	RequestHash []byte
	OrderID     string
}

// idempotencyKeyUse reads what a user's idempotency key was used for; ok
// is false when the key is not recorded.
func idempotencyKeyUse(tx *gorm.DB, userID, key string) (use keyUse, ok bool, err error) {
	var rows []keyUse
	if err := tx.Raw(`SELECT request_hash, order_id FROM idempotency_keys WHERE user_id = ? AND key = ?`, userID, key).Scan(&rows).Error; err != nil {
		return keyUse{}, false, fmt.Errorf("idempotency key %q: %w", key, err)
	}
	if len(rows) == 0 {
		return keyUse{}, false, nil
	}
	return rows[0], true, nil
}

// inOneSnapshot runs reads in one read-only REPEATABLE READ transaction,
// so that an order, its lines, timeline and refunds come from the same
// moment: read one statement at a time, a refund or a step committing in
// between would show on one and not on the other.
func inOneSnapshot(ctx context.Context, db *gorm.DB, reads func(tx *gorm.DB) error) error {
	return db.WithContext(ctx).Transaction(reads, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
}

// betweenReads, when a test sets it, runs in loadOrders after the lines
// are read and before the timeline is, with the orders' ids: where a
// write committing between two reads of one answer would show.
var betweenReads atomic.Pointer[func(ids []string)]

// orderByID reads an order; ok is false if it does not exist.
func orderByID(ctx context.Context, db *gorm.DB, id string) (orderRow, bool, error) {
	var rows []orderRow
	if err := db.WithContext(ctx).Raw(selectOrder+` WHERE id = ?`, id).Scan(&rows).Error; err != nil {
		return orderRow{}, false, fmt.Errorf("order %s: %w", id, err)
	}
	if len(rows) == 0 {
		return orderRow{}, false, nil
	}
	return rows[0], true, nil
}

// orderFilter is one page request of the order list.
type orderFilter struct {
	UserID string // "" for every user's
	Status Status // "" for any
	// ToShip: confirmed and unfulfilled orders not refunded in full, oldest first.
	ToShip bool
	After  *cursor.Keyset
	Limit  int
}

// listOrders returns up to f.Limit+1 orders, newest first (to ship: oldest
// first), keyset-paginated on (created_at, id).
func listOrders(ctx context.Context, db *gorm.DB, f orderFilter) ([]orderRow, error) {
	where, args := []string{"TRUE"}, []any{}
	if f.UserID != "" {
		where, args = append(where, "user_id = ?"), append(args, f.UserID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	after, order := "<", "DESC"
	if f.ToShip {
		where, after, order = append(where, "status = 'confirmed' AND fulfilment_state = 'unfulfilled' AND refunded_amount < total_amount"), ">", "ASC"
	}
	if f.After != nil {
		where, args = append(where, "(created_at, id) "+after+" (?, ?::uuid)"), append(args, f.After.CreatedAt, f.After.ID)
	}
	var rows []orderRow
	q := selectOrder + ` WHERE ` + strings.Join(where, " AND ") + ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	if err := db.WithContext(ctx).Raw(q, append(args, f.Limit+1)...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	return rows, nil
}

// overdueOrder is an order past its deadline and the trace context it was
// placed in (nil: none).
type overdueOrder struct {
	ID          string
	Traceparent *string
}

// overdueOrders lists up to limit orders whose current step is past its
// deadline, the most overdue first.
func overdueOrders(ctx context.Context, db *gorm.DB, limit int) ([]overdueOrder, error) {
	var out []overdueOrder
	err := db.WithContext(ctx).Raw(`SELECT id, traceparent FROM orders WHERE status IN ('pending', 'awaiting_payment') AND deadline_at < now() ORDER BY deadline_at LIMIT ?`, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("find overdue orders: %w", err)
	}
	return out, nil
}

// stillOverdue reports whether an order is past its deadline now. A final
// order has none (NULL), so it is not.
func stillOverdue(tx *gorm.DB, id string) (bool, error) {
	var overdue bool
	if err := tx.Raw(`SELECT coalesce(deadline_at < now(), false) FROM orders WHERE id = ?`, id).Scan(&overdue).Error; err != nil {
		return false, fmt.Errorf("deadline of order %s: %w", id, err)
	}
	return overdue, nil
}

// lockOrder reads an order for update inside tx; ok is false if it does not exist.
func lockOrder(tx *gorm.DB, id string) (orderRow, bool, error) {
	var rows []orderRow
	if err := tx.Raw(selectOrder+` WHERE id = ? FOR UPDATE`, id).Scan(&rows).Error; err != nil {
		return orderRow{}, false, fmt.Errorf("lock order %s: %w", id, err)
	}
	if len(rows) == 0 {
		return orderRow{}, false, nil
	}
	return rows[0], true, nil
}

// state is the order's place in the saga.
func (r orderRow) state() State { return State{Status: r.Status, Payment: r.PaymentState} }

// orderChange is what one saga step changes in an order's row.
type orderChange struct {
	from, to State
	at       time.Time
	// When the status moves, the deadline and the cancel reason go with it.
	deadline *time.Time
	reason   string
	// priceTotal: the subtotal becomes the sum of the lines' prices, the
	// total that plus the shipping price.
	priceTotal bool
	// paymentRequested: the order asks for its payment at c.at.
	paymentRequested bool
}

// changeOrder writes c to the order's row in one UPDATE, only while the
// order is in state c.from (the UPDATE waits for and then takes the row's
// lock, as lockOrder does), appends entries to its timeline in the same
// statement, and returns the row as written; ok is false when the order is
// not in that state (or does not exist), and then nothing is written.
// Comparing the whole state, not only the status, is what keeps a race
// from moving either dimension back: the step was computed for c.from and
// is written only over it. Its parameters are numbered as in insertOrder.
func changeOrder(tx *gorm.DB, id string, c orderChange, entries []timelineEntry) (orderRow, bool, error) {
	var args []any
	param := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	set := []string{"status = " + param(c.to.Status), "payment_state = " + param(c.to.Payment), "updated_at = " + param(c.at)}
	if c.to.Status != c.from.Status {
		set = append(set, "deadline_at = "+param(c.deadline), "cancel_reason = "+param(c.reason))
	}
	if c.priceTotal {
		set = append(set, "subtotal_amount = (SELECT sum(unit_price * quantity) FROM order_items WHERE order_id = orders.id)",
			"total_amount = (SELECT sum(unit_price * quantity) FROM order_items WHERE order_id = orders.id) + shipping_price")
	}
	if c.paymentRequested {
		set = append(set, "payment_requested_at = "+param(c.at))
	}
	steps, messages, details := make([]string, len(entries)), make([]string, len(entries)), make([]string, len(entries))
	for i, e := range entries {
		steps[i], messages[i], details[i] = e.step, e.messageID, e.detail
	}
	var rows []orderRow
	err := tx.Raw(`
		WITH changed AS (
			UPDATE orders SET `+strings.Join(set, ", ")+`
			 WHERE id = `+param(id)+` AND status = `+param(c.from.Status)+` AND payment_state = `+param(c.from.Payment)+`
			RETURNING `+orderColumns+`
		), entries AS (
			INSERT INTO order_timeline (order_id, step, message_id, detail)
			SELECT changed.id, e.step, nullif(e.message_id, ''), e.detail
			  FROM changed, unnest(`+param(steps)+`::text[], `+param(messages)+`::text[], `+param(details)+`::text[]) WITH ORDINALITY AS e(step, message_id, detail, n)
			 ORDER BY e.n
		)
		SELECT * FROM changed`, args...).Scan(&rows).Error
	if err != nil {
		return orderRow{}, false, fmt.Errorf("update order %s: %w", id, err)
	}
	if len(rows) == 0 {
		return orderRow{}, false, nil
	}
	return rows[0], true, nil
}

// maxTotal is the largest total an order holds: NUMERIC(10,2).
const maxTotal = "99999999.99"

// priceLines copies the names and prices of the reserved lines onto the
// order's lines in one UPDATE, and returns the order's total (their sum
// plus shipping), computed in NUMERIC (which does not overflow), and
// whether it is more than an order can hold. Summing the lines it priced is summing all priced lines: the
// order is pending, and lines are priced only on the way out of pending.
// Its parameters are numbered as in insertOrder.
func priceLines(tx *gorm.DB, orderID string, lines []productevents.ReservedLine, shipping string) (total string, tooLarge bool, err error) {
	products := make([]string, len(lines))
	names := make([]string, len(lines))
	prices := make([]string, len(lines))
	for i, l := range lines {
		products[i], names[i], prices[i] = l.ProductID, l.Name, l.UnitPrice
	}
	var out struct {
		Total    string
		TooLarge bool
	}
	err = tx.Raw(`
		WITH priced AS (
			UPDATE order_items i SET name = l.name, unit_price = l.unit_price
			  FROM unnest($2::uuid[], $3::text[], $4::numeric[]) AS l(product_id, name, unit_price)
			 WHERE i.order_id = $1 AND i.product_id = l.product_id
			RETURNING i.unit_price * i.quantity AS amount
		)
		SELECT (coalesce(sum(amount), 0) + $6::numeric)::text AS total, coalesce(sum(amount), 0) + $6::numeric > $5::numeric AS too_large FROM priced`,
		orderID, products, names, prices, maxTotal, shipping).Scan(&out).Error
	if err != nil {
		return "", false, fmt.Errorf("price the lines of order %s: %w", orderID, err)
	}
	return out.Total, out.TooLarge, nil
}

// timelineEntry is one step to add to an order's timeline.
type timelineEntry struct {
	step      string
	messageID string // "" for none
	detail    string
}

// addTimeline appends entries to an order's timeline in one INSERT, in
// their order.
func addTimeline(tx *gorm.DB, orderID string, entries ...timelineEntry) error {
	values := make([]string, len(entries))
	args := make([]any, 0, 4*len(entries))
	for i, e := range entries {
		var mid *string
		if e.messageID != "" {
			mid = &e.messageID
		}
		values[i] = "(?, ?, ?, ?)"
		args = append(args, orderID, e.step, mid, e.detail)
	}
	err := tx.Exec(`INSERT INTO order_timeline (order_id, step, message_id, detail) VALUES `+strings.Join(values, ", "), args...).Error
	if err != nil {
		return fmt.Errorf("timeline of order %s: %w", orderID, err)
	}
	return nil
}

// toOrder is an order as the API shows it, without its lines and timeline.
func toOrder(r orderRow) Order {
	return Order{ID: r.ID, UserID: r.UserID, Status: r.Status, Total: r.Total, PaymentMethod: r.PaymentMethod,
		PaymentState: r.PaymentState, CancelReason: r.CancelReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Refunded: r.RefundedAmount, RefundState: r.RefundState, Refunds: []Refund{},
		Items: []Item{}, Timeline: []TimeEntry{}, traceparent: r.Traceparent, Currency: r.currency(),
		Subtotal:        r.Subtotal,
		ShippingAddress: r.address(),
		ShippingMethod:  ShippingChoice{Code: r.ShippingMethod, Label: r.ShippingLabel, Price: r.ShippingPrice},
		Fulfilment: Fulfilment{State: r.FulfilmentState, Carrier: r.Carrier, TrackingNumber: r.TrackingNumber,
			ShippedAt: r.ShippedAt, DeliveredAt: r.DeliveredAt}}
}

// currency is the order's currency, "" for an order placed before orders
// kept theirs (Service.show fills in the shop's).
func (r orderRow) currency() string {
	if r.Currency == nil {
		return ""
	}
	return *r.Currency
}

// address is the order's shipping address; nil for pickup.
func (c ShippingColumns) address() *Address {
	if c.ShipCountry == nil {
		return nil
	}
	return &Address{Name: deref(c.ShipName), Line1: deref(c.ShipLine1), Line2: deref(c.ShipLine2),
		PostalCode: deref(c.ShipPostalCode), City: deref(c.ShipCity), Country: deref(c.ShipCountry)}
}

// sortItems puts lines in the order loadOrders reads them in: by product
// id (a uuid's order is the order of its canonical text).
func sortItems(items []Item) {
	slices.SortFunc(items, func(a, b Item) int { return strings.Compare(a.ProductID, b.ProductID) })
}

// loadOrders fills in items and timelines for rows.
func loadOrders(ctx context.Context, db *gorm.DB, rows []orderRow) ([]Order, error) {
	out := make([]Order, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]string, len(rows))
	index := map[string]int{}
	for i, r := range rows {
		ids[i] = r.ID
		index[r.ID] = i
		out[i] = toOrder(r)
	}
	var items []struct {
		OrderID string
		Item
	}
	// A line still without a name (placed while the copy did not know its
	// product, racing the event that told it) reads the copy's.
	if err := db.WithContext(ctx).Raw(`SELECT i.order_id, i.product_id, i.quantity, coalesce(i.name, c.name) AS name, i.unit_price::text AS unit_price,
			i.refunded_quantity, i.returned_quantity
		FROM order_items i LEFT JOIN product_copies c ON c.id = i.product_id
		WHERE i.order_id IN ? ORDER BY i.order_id, i.product_id`, ids).Scan(&items).Error; err != nil {
		return nil, fmt.Errorf("order items: %w", err)
	}
	for _, it := range items {
		o := &out[index[it.OrderID]]
		o.Items = append(o.Items, it.Item)
	}
	if f := betweenReads.Load(); f != nil {
		(*f)(ids)
	}
	var steps []struct {
		OrderID string
		TimeEntry
	}
	if err := db.WithContext(ctx).Raw(`SELECT order_id, at, step, detail, message_id
		FROM order_timeline WHERE order_id IN ? ORDER BY order_id, id`, ids).Scan(&steps).Error; err != nil {
		return nil, fmt.Errorf("order timeline: %w", err)
	}
	for _, s := range steps {
		o := &out[index[s.OrderID]]
		o.Timeline = append(o.Timeline, s.TimeEntry)
	}
	if err := addCustomers(ctx, db, out); err != nil {
		return nil, err
	}
	refunds, err := refundsOf(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	for id, rs := range refunds {
		out[index[id]].Refunds = rs
	}
	return out, nil
}
