package chaos

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/bus"
)

// checker checks the shop after a fault, once the load has stopped.
type checker struct {
	databaseURL string
	shop        *shop
	admin       string // an admin's session token
	customer    string // the load's customer
	// deadSeen is the last dead letter reported, so that each phase
	// reports its own.
	deadSeen int64
}

// check asserts what must hold after every fault: every order final, the
// invariants, no dead letter, each accepted order stored once, captures
// matching confirmed orders.
func (c *checker) check(t *testing.T, l *load) {
	t.Helper()
	if !c.shop.running() {
		t.Fatalf("the shop died:\n%s", c.shop.tail(40))
	}
	db, err := sql.Open("pgx", c.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Even when a check below gives up (the shop did not settle), the
	// dead letters say why.
	defer c.checkDeadLetters(t, db)

	accepted, _, failures := l.snapshot()
	for _, f := range failures {
		t.Errorf("client: %s", f)
	}
	c.waitFinal(t, db)
	c.waitDrained(t)
	apptest.CheckInvariantsAt(t, c.databaseURL, c.overview)
	c.checkAcceptedOnce(t, db, accepted)
	c.checkCaptures(t, db)
}

// waitFinal waits until every order has reached a final status. The bound
// is generous: this checks that they get there, not how fast.
func (c *checker) waitFinal(t *testing.T, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var open int
		err := db.QueryRow(`SELECT count(*) FROM orders.orders WHERE status NOT IN ('confirmed', 'rejected', 'cancelled')`).Scan(&open)
		if err == nil && open == 0 {
			return
		}
		if time.Now().After(deadline) {
			rows, _ := queryStrings(db, `SELECT id::text || ' ' || status || ' ' || payment_state FROM orders.orders
				WHERE status NOT IN ('confirmed', 'rejected', 'cancelled') ORDER BY created_at LIMIT 20`)
			t.Fatalf("%d orders not final after 5 minutes (%v), e.g.:\n%s", open, err, strings.Join(rows, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitDrained waits until no handler lags. Under a lasting fault (handlers
// failing, a slow consumer) a group may take a while to drain after the
// load stops; the invariant checker's own wait is shorter. The bound is
// generous: a group that makes no progress fails it, a slow one does not.
func (c *checker) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		why := ""
		stats, err := c.overview(context.Background())
		if err != nil {
			why = err.Error()
		}
		for _, topic := range stats {
			for _, g := range topic.Consumers {
				if g.Lag > 0 && why == "" {
					why = fmt.Sprintf("handler %s lags %d on %s", g.Handler, g.Lag, topic.Topic)
				}
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bus did not drain within 5 minutes: %s", why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkDeadLetters fails on every dead letter parked since the last check:
// a fault the shop recovers from must not park a message.
func (c *checker) checkDeadLetters(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT id, handler, attempts, left(error, 300) FROM bus.dead_letters WHERE id > $1 ORDER BY id`, c.deadSeen)
	if err != nil {
		t.Fatalf("read the dead letters: %v", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id       int64
			handler  string
			attempts int
			cause    string
		)
		if err := rows.Scan(&id, &handler, &attempts, &cause); err != nil {
			t.Fatal(err)
		}
		c.deadSeen = max(c.deadSeen, id)
		t.Errorf("DEAD LETTER %d: handler %s after %d attempts: %s", id, handler, attempts, cause)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// checkAcceptedOnce: every order the client was told was accepted exists,
// once, under the id it was told; and no order exists that it was not told
// about (every key it used was accepted in the end).
func (c *checker) checkAcceptedOnce(t *testing.T, db *sql.DB, accepted map[string]string) {
	t.Helper()
	rows, err := db.Query(`SELECT coalesce(idempotency_key, ''), id::text FROM orders.orders WHERE user_id = $1`, c.customer)
	if err != nil {
		t.Fatalf("read the orders: %v", err)
	}
	defer rows.Close()
	stored := map[string][]string{}
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			t.Fatal(err)
		}
		stored[key] = append(stored[key], id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for key, id := range accepted {
		if got := stored[key]; len(got) != 1 || got[0] != id {
			t.Errorf("order %s was accepted as %s; stored: %v", key, id, got)
		}
	}
	for key, ids := range stored {
		if _, ok := accepted[key]; !ok {
			t.Errorf("orders %v (key %q) exist but the client was never told they were accepted", ids, key)
		}
	}
}

// checkCaptures: the money kept (captured payments not refunded) is that
// of the confirmed orders, in number and in sum.
func (c *checker) checkCaptures(t *testing.T, db *sql.DB) {
	t.Helper()
	var confirmed, kept int
	var confirmedSum, keptSum string
	err := db.QueryRow(`
		SELECT (SELECT count(*) FROM orders.orders WHERE status = 'confirmed'),
		       (SELECT coalesce(sum(total_amount), 0)::text FROM orders.orders WHERE status = 'confirmed'),
		       (SELECT count(*) FROM payments.payments p WHERE p.status = 'captured'
		           AND NOT EXISTS (SELECT 1 FROM payments.refunds r WHERE r.payment_id = p.id AND r.status = 'succeeded')),
		       (SELECT coalesce(sum(p.amount), 0)::text FROM payments.payments p WHERE p.status = 'captured'
		           AND NOT EXISTS (SELECT 1 FROM payments.refunds r WHERE r.payment_id = p.id AND r.status = 'succeeded'))`).
		Scan(&confirmed, &confirmedSum, &kept, &keptSum)
	if err != nil {
		t.Fatalf("count captures: %v", err)
	}
	if confirmed != kept || confirmedSum != keptSum {
		t.Errorf("%d confirmed orders (%s) but %d captures kept (%s)", confirmed, confirmedSum, kept, keptSum)
	}
}

// overview is the shop's bus page (every handler runs in its one process).
func (c *checker) overview(ctx context.Context) ([]bus.TopicStats, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.shop.url()+"/api/v1/admin/bus", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct{ Topics []bus.TopicStats }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bus overview: %d %v", resp.StatusCode, err)
	}
	return out.Topics, nil
}

// confirmedBetween counts the orders confirmed in [from, to).
func confirmedBetween(db *sql.DB, from, to time.Time) int {
	var n int
	_ = db.QueryRow(`SELECT count(*) FROM orders.orders WHERE status = 'confirmed' AND updated_at >= $1 AND updated_at < $2`, from, to).Scan(&n)
	return n
}

// firstConfirmedAfter is when the first order was confirmed at or after t
// (zero if none was).
func firstConfirmedAfter(db *sql.DB, t time.Time) time.Time {
	var at sql.NullTime
	_ = db.QueryRow(`SELECT min(updated_at) FROM orders.orders WHERE status = 'confirmed' AND updated_at >= $1`, t).Scan(&at)
	return at.Time
}

func queryStrings(db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.Query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return out, err
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, rows.Err()
}

// endedBy counts the orders placed since from that did not end confirmed,
// by status and reason (a declined card; a deadline that a fault made
// them miss).
func endedBy(db *sql.DB, from time.Time) map[string]int {
	out := map[string]int{}
	rows, err := db.Query(`SELECT status || ':' || cancel_reason, count(*) FROM orders.orders
		WHERE created_at >= $1 AND status <> 'confirmed' GROUP BY 1`, from)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if rows.Scan(&k, &n) == nil {
			out[strings.TrimSuffix(k, ":")] = n
		}
	}
	return out
}
