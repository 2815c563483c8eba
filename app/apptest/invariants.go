package apptest

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/platform/bus"
)

// CheckInvariants waits until the shop has settled (every order final, the
// bus drained, no payment or refund in flight) and then checks the
// invariants of docs/design.md (The order saga) across every module's schema, failing loudly on
// each violation:
//   - stock never negative; reserved equals the sum of active reservations;
//     on hand equals initial + restocks - sold + returned (the movement
//     ledger); goods come back only as far as they were sold, and every
//     return an order recorded reached the stock, once;
//   - every order reaches a final status;
//   - a confirmed order has exactly one captured payment (which staff may
//     have refunded in part or in full) and one committed reservation;
//   - a cancelled or rejected order has no net charge and no active reservation;
//   - an order's payment state agrees with its payment and refunds: none, no
//     payment; requested, no outcome (no payment: its request was never
//     applied); captured or failed, a payment of that status and, unless
//     the order is confirmed, no refund; refund requested, a captured
//     payment not refunded; refunded, a captured payment and its one
//     succeeded refund;
//   - the refunds of a payment that have not failed never add up to more
//     than its capture, and only a captured payment has refunds;
//   - an order's refunded amount (hence its refund_state) is the sum of its
//     payment's succeeded refunds, refund by refund, and every refund the
//     order asked for was settled as the payment module settled it
//     (succeeded, or failed when the provider refused it);
//   - each message's effect is applied once;
//   - no order line or timeline entry without its order, no reservation
//     line without its reservation, no stock movement without its product
//     (rules the database's foreign keys held before ADR 0039).
//
// docs/adr/0033 gives the rules of refunds and returns.
//
// It reads as the database superuser: it is a test of the whole, so it may
// look across the module walls that the code itself may not. Tests that
// share a shop may go on working while it reads: when something was
// published meanwhile, it waits for the shop to settle and reads again.
func (s *Shop) CheckInvariants(t testing.TB) {
	t.Helper()
	CheckInvariantsAt(t, s.DatabaseURL, s.BusOverview)
}

// Overview reports the progress of every topic and of every handler on the
// bus, wherever the handler runs.
type Overview func(ctx context.Context) ([]bus.TopicStats, error)

// CheckInvariantsAt is CheckInvariants for a shop whose modules may run in
// several processes: databaseURL is a superuser URL of the shop's database,
// overview tells every handler's lag.
func CheckInvariantsAt(t testing.TB, databaseURL string, overview Overview) {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := settling{overview: overview}
	for attempt := 1; ; attempt++ {
		published := s.waitSettled(t, db)
		violations := invariantViolations(t, db)
		if len(violations) == 0 {
			return
		}
		// The invariants are those of a settled shop. A test running in
		// parallel on the same shop may have placed or cancelled an order
		// while it was read (every such step publishes an event): then
		// read it again once it has settled. Violations with nothing
		// published meanwhile are real.
		if s.published(context.Background()) != published && attempt < 5 {
			continue
		}
		for _, v := range violations {
			t.Errorf("INVARIANT VIOLATED: %s", v)
		}
		return
	}
}

// invariantViolations reads the shop once and describes each row that
// breaks an invariant.
func invariantViolations(t testing.TB, db *sql.DB) []string {
	t.Helper()
	violations := []string{}
	check := func(what, query string) {
		rows, err := db.Query(query)
		if err != nil {
			t.Fatalf("invariant %q: %v", what, err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			parts := make([]string, len(cols))
			for i, c := range cols {
				parts[i] = fmt.Sprintf("%s=%v", c, vals[i])
			}
			violations = append(violations, what+": "+strings.Join(parts, " "))
		}
	}

	check("stock is negative or over-reserved", `
		SELECT product_id, on_hand, reserved FROM products.inventory WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand`)
	check("reserved differs from the sum of active reservations", `
		SELECT i.product_id, i.reserved, coalesce(a.active, 0) AS active
		  FROM products.inventory i
		  LEFT JOIN (SELECT l.product_id, sum(l.quantity) AS active
		               FROM products.reservation_lines l JOIN products.reservations r USING (order_id)
		              WHERE r.state = 'active' GROUP BY l.product_id) a USING (product_id)
		 WHERE i.reserved <> coalesce(a.active, 0)`)
	check("on hand differs from initial + restocks - sold + returned", `
		SELECT i.product_id, i.on_hand, coalesce(m.total, 0) AS ledger
		  FROM products.inventory i
		  LEFT JOIN (SELECT product_id, sum(delta) AS total FROM products.stock_movements GROUP BY product_id) m USING (product_id)
		 WHERE i.on_hand <> coalesce(m.total, 0)`)
	check("an order did not reach a final status", `
		SELECT id, status FROM orders.orders WHERE status NOT IN ('confirmed', 'rejected', 'cancelled')`)
	check("a confirmed order lacks its one committed reservation", `
		SELECT o.id, r.state FROM orders.orders o LEFT JOIN products.reservations r ON r.order_id = o.id
		 WHERE o.status = 'confirmed' AND r.state IS DISTINCT FROM 'committed'`)
	check("a cancelled or rejected order still holds stock", `
		SELECT o.id, o.status FROM orders.orders o JOIN products.reservations r ON r.order_id = o.id
		 WHERE o.status IN ('cancelled', 'rejected') AND r.state IN ('active', 'committed')`)
	check("a sale was recorded twice", `
		SELECT order_id, product_id, count(*) FROM products.stock_movements WHERE kind = 'sale'
		 GROUP BY order_id, product_id HAVING count(*) > 1`)
	check("goods came back that were not sold", `
		SELECT order_id::text AS order_id, product_id::text AS product_id,
		       sum(-delta) FILTER (WHERE kind = 'sale') AS sold, sum(delta) FILTER (WHERE kind = 'return') AS returned
		  FROM products.stock_movements WHERE kind IN ('sale', 'return') AND order_id IS NOT NULL
		 GROUP BY order_id, product_id
		HAVING coalesce(sum(delta) FILTER (WHERE kind = 'return'), 0) > coalesce(sum(-delta) FILTER (WHERE kind = 'sale'), 0)`)
	check("a return the order recorded did not reach the stock once", `
		SELECT coalesce(o.return_id, m.return_id)::text AS return_id, coalesce(o.product_id, m.product_id)::text AS product_id,
		       o.quantity AS order_says, m.quantity AS stock_says
		  FROM (SELECT l.return_id, l.product_id, l.quantity FROM orders.order_return_lines l
		          JOIN products.products p ON p.id = l.product_id) o
		  FULL JOIN (SELECT return_id, product_id, sum(delta) AS quantity FROM products.stock_movements
		              WHERE kind = 'return' GROUP BY return_id, product_id) m
		    ON m.return_id = o.return_id AND m.product_id = o.product_id
		 WHERE o.quantity IS DISTINCT FROM m.quantity`)
	// Rows whose foreign key was dropped for the hot path (ADR 0039): the
	// checker holds the rule the database no longer does.
	check("an order line or timeline entry has no order", `
		SELECT 'order_items' AS tbl, c.order_id FROM orders.order_items c
		 WHERE NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = c.order_id)
		UNION ALL
		SELECT 'order_timeline', c.order_id FROM orders.order_timeline c
		 WHERE NOT EXISTS (SELECT FROM orders.orders o WHERE o.id = c.order_id)`)
	check("a reservation line has no reservation", `
		SELECT l.order_id, l.product_id FROM products.reservation_lines l
		 WHERE NOT EXISTS (SELECT FROM products.reservations r WHERE r.order_id = l.order_id)`)
	check("a stock movement has no product", `
		SELECT m.id, m.product_id FROM products.stock_movements m
		 WHERE NOT EXISTS (SELECT FROM products.products p WHERE p.id = m.product_id)`)
	check("a message moved an order twice", `
		SELECT order_id, message_id, step, count(*) FROM orders.order_timeline WHERE message_id IS NOT NULL
		 GROUP BY order_id, message_id, step HAVING count(*) > 1`)
	if hasSchema(db, "payments") {
		check("a confirmed order does not have exactly one captured payment", `
			SELECT o.id, count(p.id) FILTER (WHERE p.status = 'captured') AS captured
			  FROM orders.orders o
			  LEFT JOIN payments.payments p ON p.order_id = o.id
			 WHERE o.status = 'confirmed'
			 GROUP BY o.id
			HAVING count(p.id) FILTER (WHERE p.status = 'captured') <> 1`)
		check("refunds exceed a payment's capture", `
			SELECT p.id::text AS payment_id, p.order_id::text AS order_id, p.status, p.amount, sum(r.amount) AS refunds
			  FROM payments.payments p JOIN payments.refunds r ON r.payment_id = p.id AND r.status <> 'failed'
			 GROUP BY p.id, p.order_id, p.status, p.amount
			HAVING p.status <> 'captured' OR sum(r.amount) > p.amount`)
		check("an order's refunded amount disagrees with its payment's succeeded refunds", `
			SELECT o.id::text AS order_id, o.refunded_amount, coalesce(pr.amount, 0) AS payment_refunded,
			       coalesce(orf.amount, 0) AS order_refunds_succeeded
			  FROM orders.orders o
			  LEFT JOIN (SELECT p.order_id, sum(r.amount) AS amount FROM payments.refunds r JOIN payments.payments p ON p.id = r.payment_id
			              WHERE r.status = 'succeeded' GROUP BY p.order_id) pr ON pr.order_id = o.id
			  LEFT JOIN (SELECT order_id, sum(amount) AS amount FROM orders.order_refunds WHERE status = 'succeeded' GROUP BY order_id) orf
			    ON orf.order_id = o.id
			 WHERE o.refunded_amount <> coalesce(pr.amount, 0) OR o.refunded_amount <> coalesce(orf.amount, 0)`)
		check("a refund the order asked for or heard of is not settled as the payment's refund", `
			SELECT o.id::text AS refund_id, o.order_id::text AS order_id, o.status, o.amount, r.status AS payment_says, r.amount AS payment_amount
			  FROM orders.order_refunds o
			  LEFT JOIN payments.refunds r ON r.id = o.id
			  LEFT JOIN payments.payments p ON p.id = r.payment_id
			 WHERE o.status NOT IN ('succeeded', 'failed') OR r.id IS NULL OR r.status <> o.status OR p.order_id <> o.order_id OR r.amount <> o.amount`)
		check("a cancelled or rejected order has a net charge", `
			SELECT o.id, o.status,
			       coalesce(sum(p.amount) FILTER (WHERE p.status = 'captured'), 0) AS captured,
			       coalesce((SELECT sum(r.amount) FROM payments.refunds r JOIN payments.payments p2 ON p2.id = r.payment_id
			                  WHERE p2.order_id = o.id AND r.status = 'succeeded'), 0) AS refunded
			  FROM orders.orders o LEFT JOIN payments.payments p ON p.order_id = o.id
			 WHERE o.status IN ('cancelled', 'rejected')
			 GROUP BY o.id, o.status
			HAVING coalesce(sum(p.amount) FILTER (WHERE p.status = 'captured'), 0) <>
			       coalesce((SELECT sum(r.amount) FROM payments.refunds r JOIN payments.payments p2 ON p2.id = r.payment_id
			                  WHERE p2.order_id = o.id AND r.status = 'succeeded'), 0)`)
		// Each payment state is entered by the one event that the payment
		// module publishes with the row it describes (payment.succeeded
		// with the capture, payment.failed with the failure,
		// payment.refunded with the refund), and an order has at most one
		// payment: in a settled shop the order has heard of every outcome.
		check("an order's payment state disagrees with its payment and refunds", `
			SELECT o.id, o.status, o.payment_state, p.status AS payment,
			       count(r.id) AS refunds, count(r.id) FILTER (WHERE r.status = 'succeeded') AS refunds_succeeded
			  FROM orders.orders o
			  LEFT JOIN payments.payments p ON p.order_id = o.id
			  LEFT JOIN payments.refunds r ON r.payment_id = p.id
			 GROUP BY o.id, o.status, o.payment_state, p.status
			HAVING NOT coalesce(CASE o.payment_state
			         WHEN 'none' THEN p.status IS NULL
			         WHEN 'requested' THEN p.status IS NULL OR p.status IN ('pending', 'processing')
			         WHEN 'captured' THEN p.status = 'captured' AND (o.status = 'confirmed' OR count(r.id) = 0)
			         WHEN 'failed' THEN p.status = 'failed' AND count(r.id) = 0
			         WHEN 'refund_requested' THEN p.status = 'captured' AND count(r.id) FILTER (WHERE r.status = 'succeeded') = 0
			         WHEN 'refunded' THEN p.status = 'captured' AND count(r.id) FILTER (WHERE r.status = 'succeeded') = 1
			       END, false)`)
	}
	return violations
}

func hasSchema(db *sql.DB, name string) bool {
	var ok bool
	_ = db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok)
	return ok
}

// settling watches a shop until it has settled.
type settling struct{ overview Overview }

// waitSettled waits until every order is final, no handler lags and no
// payment or refund is in flight, twice in a row with nothing published in
// between: lags are read topic by topic, so a chain that moves against
// that order (payment.succeeded → payment.refund_requested) could slip
// between two reads of one check.
// It returns how many messages had been published then.
func (s settling) waitSettled(t testing.TB, db *sql.DB) int64 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	lastQuiet := int64(-1)
	for {
		busy, why := s.busy(ctx, db)
		if !busy {
			published := s.published(ctx)
			if published == lastQuiet {
				return published
			}
			lastQuiet = published
		} else {
			lastQuiet = -1
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shop did not settle within 60s: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// published counts every message committed to the bus so far.
func (s settling) published(ctx context.Context) int64 {
	stats, err := s.overview(ctx)
	if err != nil {
		return -2
	}
	var n int64
	for _, t := range stats {
		n += t.Published
	}
	return n
}

func (s settling) busy(ctx context.Context, db *sql.DB) (bool, string) {
	var open int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM orders.orders WHERE status NOT IN ('confirmed', 'rejected', 'cancelled')`).Scan(&open); err == nil && open > 0 {
		return true, fmt.Sprintf("%d orders not final", open)
	}
	stats, err := s.overview(ctx)
	if err != nil {
		return true, err.Error()
	}
	for _, t := range stats {
		for _, c := range t.Consumers {
			if c.Lag > 0 {
				return true, fmt.Sprintf("handler %s lags %d on %s", c.Handler, c.Lag, t.Topic)
			}
		}
	}
	if hasSchema(db, "payments") {
		var inflight int
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM payments.payments WHERE status IN ('pending', 'processing'))
			+ (SELECT count(*) FROM payments.refunds WHERE status IN ('pending', 'processing'))`).Scan(&inflight); err == nil && inflight > 0 {
			return true, fmt.Sprintf("%d payments or refunds in flight", inflight)
		}
	}
	return false, ""
}
