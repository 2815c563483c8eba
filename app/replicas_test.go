package app_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// The two full replicas of TestReplicas.
const replicaA, replicaB = "all", "all-2"

// paymentLease is the payment worker's claim lease in TestReplicas:
// 2×MODSHOP_PAYMENT_PROVIDER_TIMEOUT+10s.
const paymentLease = 2*4*time.Second + 10*time.Second

// TestReplicas runs the shop as a user would run two copies of it behind a
// load balancer: two `modshop serve` processes, each running every module,
// on one database, and a front that sends each request to the next one
// (apptest.Front). The saga suite runs through the front, so that a log-in
// and the request using its token, an order and its reads, land on
// different replicas; then sessions, throttles and background work are
// checked across the two, and one replica is killed under load.
//
// After the suite a replica is killed in the middle of a payment's
// provider call, holding the claim: the claim's lease runs out while the
// session, throttle and deadline subtests run, and a later one checks that
// the other replica took the payment over after the lease, and charged it
// once.
//
// The saga's deadlines are long (the deadline sweep is driven by moving
// deadlines in the database); the provider timeout is short, so that a
// dead replica's payment claim expires in 18s rather than 30s; the test
// provider's delay is long enough for pm_card_delayed orders to be caught
// by their deadline.
//
// Not parallel, like TestSplit: the processes hold many connections.
// replicaRegistrations is TestReplicas' MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT:
// above what the saga suite and the deadline world register from one address.
const replicaRegistrations = 16

func TestReplicas(t *testing.T) {
	split := apptest.StartSplit(t, apptest.SplitOptions{
		OneProcess: true,
		Replicas:   []string{"all"},
		Env: map[string]string{
			"MODSHOP_STOCK_TIMEOUT":            "10m",
			"MODSHOP_PAYMENT_TIMEOUT":          "10m",
			"MODSHOP_PAYMENT_PROVIDER_TIMEOUT": "4s",
			"MODSHOP_PAYMENT_TEST_DELAY":       "3s",
			// Every replica runs every module on one pool each.
			"MODSHOP_DB_MAX_CONNS": "4",
			// The saga suite and the deadline world register from
			// 127.0.0.1; the registrations subtest counts this limit.
			"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": strconv.Itoa(replicaRegistrations),
		},
	})
	// The test's own registrations from 127.0.0.1 (the saga suite's, two
	// worlds here, and the deadline world's) stay within
	// MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT (replicaRegistrations); the
	// other subtests play clients of their own.
	t.Run("saga suite", func(t *testing.T) { sagasuite.Run(t, split) })
	for _, r := range []string{replicaA, replicaB} {
		if n := split.Front().Served(r); n < 20 {
			t.Errorf("replica %s answered %d requests of the saga suite; the front should share them", r, n)
		}
	}
	var stranded strandedPayment
	t.Run("kill -9 the replica holding a payment claim", func(t *testing.T) { stranded = strandPaymentClaim(t, split) })
	if t.Failed() {
		t.FailNow()
	}
	t.Run("sessions on either replica", func(t *testing.T) { sessionsAcrossReplicas(t, split) })
	t.Run("throttles hold across replicas", func(t *testing.T) { throttlesAcrossReplicas(t, split) })
	t.Run("deadline sweep cancels once", func(t *testing.T) { deadlineSweepOnce(t, split) })
	t.Run("the dead replica's payment is taken over after its lease", func(t *testing.T) { stranded.check(t, split) })
	t.Run("kill -9 one replica mid-load", func(t *testing.T) { killReplicaMidLoad(t, split, stranded.world) })
}

// replicaClients are API clients of each replica, past the front.
func replicaClients(t *testing.T, split *apptest.Split) [2]*testkit.API {
	return [2]*testkit.API{split.ProcessClient(t, replicaA), split.ProcessClient(t, replicaB)}
}

// from plays a client at addr: the replicas believe the X-Forwarded-For
// of their trusted proxy (the front, or the test itself on 127.0.0.1).
func from(addr string) testkit.Option { return testkit.Header("X-Forwarded-For", addr) }

// register makes an account through api as a client at addr.
func register(t *testing.T, api *testkit.API, addr string) (name string) {
	t.Helper()
	name = apptest.Unique("rep")
	r := api.Do("POST", "/api/v1/users", map[string]string{"username": name, "email": name + "@example.com", "password": "correct horse battery"}, from(addr))
	if r.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", name, r.Status, r.Body)
	}
	return name
}

// sessionsAcrossReplicas: a token made by one replica works on the other;
// logged out on one, it is refused by both at once. Long-dead sessions are
// purged by log-ins (each deletes up to 100, skipping rows another holds):
// log-ins on both replicas at once purge them all, without error.
func sessionsAcrossReplicas(t *testing.T, split *apptest.Split) {
	apis := replicaClients(t, split)
	logIn := func(api *testkit.API, name string) string {
		t.Helper()
		r := api.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": "correct horse battery"}, from("10.70.0.1"))
		if r.Status != http.StatusCreated {
			t.Errorf("log in %s: %d %s", name, r.Status, r.Body)
			return ""
		}
		var s struct{ Token string }
		r.Decode(t, &s)
		return s.Token
	}
	gone := register(t, apis[0], "10.70.0.1")
	for i := range 4 {
		logIn(apis[i%2], gone)
	}
	db := testkit.OpenSQL(t, split.DatabaseURL)
	if _, err := db.Exec(`UPDATE users.sessions SET expires_at = now() - interval '8 days' WHERE user_id = (SELECT id FROM users.users WHERE username = $1)`, gone); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 2 {
		name := register(t, apis[i], "10.70.0.1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			logIn(apis[i], name)
		}()
	}
	wg.Wait()
	var dead int
	if err := db.QueryRow(`SELECT count(*) FROM users.sessions WHERE expires_at < now() - interval '7 days'`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d long-dead sessions left after log-ins on both replicas", dead)
	}

	for i := range 2 {
		login, use := apis[i], apis[1-i]
		name := register(t, login, "10.70.0.1")
		token := logIn(login, name)
		var me struct{ Username string }
		r := use.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token))
		if r.Status != http.StatusOK {
			t.Fatalf("the other replica refuses a token made by the first: %d %s", r.Status, r.Body)
		}
		if r.Decode(t, &me); me.Username != name {
			t.Fatalf("the other replica says the token is %q's, want %q", me.Username, name)
		}
		if r := use.Do("DELETE", "/api/v1/sessions/current", nil, testkit.Bearer(token)); r.Status != http.StatusNoContent {
			t.Fatalf("log out on the other replica: %d %s", r.Status, r.Body)
		}
		for j, api := range apis {
			if r := api.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)); r.Status != http.StatusUnauthorized {
				t.Fatalf("replica %d after the log-out: %d, want 401", j+1, r.Status)
			}
		}
	}
}

// throttlesAcrossReplicas: attempts alternating between the replicas are
// refused after as many as attempts on one replica alone (the buckets are
// rows in users.throttle_buckets, ADR 0005), for failed log-ins on an
// account and for registrations from one client address.
func throttlesAcrossReplicas(t *testing.T, split *apptest.Split) {
	// allowed counts the attempts answered before the first 429, sending
	// attempt i to the first replica, or with both to each in turn.
	allowed := func(t *testing.T, both bool, attempt func(api *testkit.API, i int) int) int {
		apis := replicaClients(t, split)
		via := apis[:1]
		if both {
			via = apis[:]
		}
		for i := range 40 {
			if status := attempt(via[i%len(via)], i); status == http.StatusTooManyRequests {
				return i
			}
		}
		t.Fatal("40 attempts, none refused")
		return 0
	}
	// Failed log-ins on one account, each from another address (the
	// per-client bucket stays out of it).
	failedLogins := func(t *testing.T, both bool, net string) int {
		name := register(t, split.ProcessClient(t, replicaA), net+".0.1")
		return allowed(t, both, func(api *testkit.API, i int) int {
			r := api.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": "wrong password here"}, from(fmt.Sprintf("%s.1.%d", net, i)))
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusTooManyRequests {
				t.Fatalf("failed log-in %d: %d %s", i, r.Status, r.Body)
			}
			return r.Status
		})
	}
	// Registrations from one address.
	registrations := func(t *testing.T, both bool, addr string) int {
		return allowed(t, both, func(api *testkit.API, i int) int {
			name := apptest.Unique("thr")
			r := api.Do("POST", "/api/v1/users", map[string]string{"username": name, "email": name + "@example.com", "password": "correct horse battery"}, from(addr))
			if r.Status != http.StatusCreated && r.Status != http.StatusTooManyRequests {
				t.Fatalf("registration %d: %d %s", i, r.Status, r.Body)
			}
			return r.Status
		})
	}
	// The four counts are taken at once (each on accounts and addresses
	// of its own): most of the time goes to hashing passwords.
	var logins, regs [2]int // [one replica, alternating]
	t.Run("count", func(t *testing.T) {
		for i, both := range []bool{false, true} {
			t.Run(fmt.Sprintf("log-ins alternating=%v", both), func(t *testing.T) {
				t.Parallel()
				logins[i] = failedLogins(t, both, fmt.Sprintf("10.7%d", 1+i))
			})
			t.Run(fmt.Sprintf("registrations alternating=%v", both), func(t *testing.T) {
				t.Parallel()
				regs[i] = registrations(t, both, fmt.Sprintf("10.7%d.0.1", 3+i))
			})
		}
	})
	t.Logf("failed log-ins allowed per account: %d on one replica, %d alternating", logins[0], logins[1])
	if logins[0] != 5 || logins[1] != logins[0] {
		t.Errorf("failed log-ins allowed per account: %d alternating between the replicas, %d on one; want 5 (MODSHOP_LOGIN_ATTEMPTS_PER_ACCOUNT) for both", logins[1], logins[0])
	}
	t.Logf("registrations allowed per client: %d on one replica, %d alternating", regs[0], regs[1])
	if regs[0] != replicaRegistrations || regs[1] != regs[0] {
		t.Errorf("registrations allowed per client: %d alternating between the replicas, %d on one; want %d (MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT) for both", regs[1], regs[0], replicaRegistrations)
	}
}

// deadlineSweepOnce: both replicas run the deadline sweep every second
// over the same orders. Orders waiting for their (slow) payment are made
// overdue at once; each must be cancelled once: one order.cancelled event,
// one payment_timeout step, its stock released once, the late payment
// refunded once.
func deadlineSweepOnce(t *testing.T, split *apptest.Split) {
	w := sagasuite.NewWorld(t, split, map[string]int{"SLOW": 100})
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, o := w.Place(t, w.Customer, "pm_card_delayed", map[string]int{"SLOW": 1})
			if r.Status != http.StatusAccepted {
				t.Errorf("place: %d %s", r.Status, r.Body)
			}
			ids[i] = o.ID
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Wait until every order waits for its payment (or, on a slow
	// machine, is past it already).
	db := testkit.OpenSQL(t, split.DatabaseURL)
	deadline := time.Now().Add(time.Minute)
	for {
		var pending int
		if err := db.QueryRow(`SELECT count(*) FROM orders.orders WHERE id = ANY($1::uuid[]) AND status = 'pending'`, ids).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders still pending after a minute", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := db.Exec(`UPDATE orders.orders SET deadline_at = now() - interval '1 second' WHERE id = ANY($1::uuid[]) AND status = 'awaiting_payment'`, ids)
	if err != nil {
		t.Fatal(err)
	}
	overdue, _ := res.RowsAffected()
	t.Logf("%d of %d orders made overdue before their payment came", overdue, n)
	if overdue == 0 {
		t.Fatal("every payment came before the deadline was moved: nothing for the sweeps to do")
	}
	waitAllFinal(t, split.DatabaseURL, 2*time.Minute)
	split.CheckInvariants(t)
	timedOut := 0
	for _, id := range ids {
		o := w.Order(t, w.Admin, id)
		steps := 0
		for _, s := range o.Timeline {
			if s.Step == "payment_timeout" {
				steps++
			}
		}
		cancelled := countEvents(t, db, "order.cancelled.v1", id)
		released := countEvents(t, db, "stock.released.v1", id)
		if steps > 1 || cancelled > 1 || released > 1 {
			t.Errorf("order %s: %d payment_timeout steps, %d order.cancelled and %d stock.released events; want at most one each", id, steps, cancelled, released)
		}
		if o.Status == "cancelled" {
			timedOut++
			if steps != 1 || cancelled != 1 || released != 1 {
				t.Errorf("cancelled order %s: %d payment_timeout steps, %d order.cancelled and %d stock.released events; want one each", id, steps, cancelled, released)
			}
		}
	}
	t.Logf("%d orders cancelled by the sweeps of two replicas", timedOut)
	if timedOut == 0 {
		t.Error("no order was cancelled by its deadline")
	}
	if got := w.Available(t, "SLOW"); got != 100-(n-timedOut) {
		t.Errorf("available %d, want %d: only the confirmed orders keep stock", got, 100-(n-timedOut))
	}
}

// strandedPayment is a payment whose claim a killed replica held.
type strandedPayment struct {
	world   *sagasuite.World
	orderID string
	claimed time.Time // by the database's clock
	killed  time.Time // by this process's: the same machine
}

// strandPaymentClaim kills (SIGKILL) a replica in the middle of a payment
// provider call, with the claim held, and starts both replicas again.
func strandPaymentClaim(t *testing.T, split *apptest.Split) strandedPayment {
	w := sagasuite.NewWorld(t, split, map[string]int{"LOAD": 1000, "LEASE": 5})
	db := testkit.OpenSQL(t, split.DatabaseURL)
	// Only the first replica runs when the slow payment is claimed.
	split.Stop(t, replicaB)
	_, slow := w.Place(t, w.Customer, "pm_card_delayed", map[string]int{"LEASE": 1})
	var claimed time.Time
	deadline := time.Now().Add(time.Minute)
	for {
		var status string
		err := db.QueryRow(`SELECT status, coalesce(claimed_at, 'epoch') FROM payments.payments WHERE order_id = $1`, slow.ID).Scan(&status, &claimed)
		if err == nil && status == "processing" {
			break
		}
		if err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the payment was not claimed within a minute (status %q)", status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Within the test provider's 3s delay: the claim is held.
	split.Kill(t, replicaA)
	killed := time.Now()
	split.Restart(t, replicaB)
	split.Restart(t, replicaA)
	return strandedPayment{world: w, orderID: slow.ID, claimed: claimed, killed: killed}
}

// check: the stranded payment was claimed again once its lease had passed
// (and not before), and captured once; its order confirmed.
func (p strandedPayment) check(t *testing.T, split *apptest.Split) {
	p.world.WaitStatus(t, p.orderID, "confirmed")
	var attempts int
	var again time.Time
	if err := testkit.OpenSQL(t, split.DatabaseURL).QueryRow(`SELECT attempts, claimed_at FROM payments.payments WHERE order_id = $1`, p.orderID).Scan(&attempts, &again); err != nil {
		t.Fatal(err)
	}
	t.Logf("the dead replica's claim taken over %s after it was made (lease %s), %s after the kill",
		again.Sub(p.claimed).Round(100*time.Millisecond), paymentLease, again.Sub(p.killed).Round(100*time.Millisecond))
	tookOver := !again.Before(p.claimed.Add(paymentLease))
	if attempts < 2 || !tookOver {
		t.Errorf("the dead replica's payment: %d attempts, claimed again after the lease: %v; want a second attempt, after the lease", attempts, tookOver)
	}
	if _, pay := p.world.Payments(t, p.world.Customer, p.orderID); len(pay.Items) != 1 || pay.Items[0].Status != "captured" {
		t.Errorf("payments of the slow order: %+v, want one captured", pay)
	}
}

// killReplicaMidLoad kills (SIGKILL) a replica while four clients place
// orders through the front, each order with an Idempotency-Key sent again
// (same key) whenever the answer is lost or refused. The other replica
// carries every saga to its end: each order the client was told was
// accepted exists once, is confirmed and captured once, no dead letter,
// the invariants hold.
func killReplicaMidLoad(t *testing.T, split *apptest.Split, w *sagasuite.World) {
	db := testkit.OpenSQL(t, split.DatabaseURL)
	const orders = 60
	accepted := map[string]string{} // key -> order id
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				key := fmt.Sprintf("replica-load-%d", i)
				id, err := placeRetrying(client, split.URL, w.Customer, key, w.Products["LOAD"])
				if err != nil {
					t.Errorf("order %s: %v", key, err)
					continue
				}
				mu.Lock()
				accepted[key] = id
				mu.Unlock()
			}
		}()
	}
	for i := range orders {
		if i == orders/3 {
			t.Logf("kill -9 replica %s with %d orders under way", replicaB, underWay(t, split.DatabaseURL))
			split.Kill(t, replicaB)
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if len(accepted) != orders {
		t.Fatalf("%d orders accepted, want %d", len(accepted), orders)
	}
	waitAllFinal(t, split.DatabaseURL, 3*time.Minute)
	split.CheckInvariants(t)

	var dead int
	if err := db.QueryRow(`SELECT count(*) FROM bus.dead_letters`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	if dead != 0 {
		t.Errorf("%d dead letters", dead)
	}
	ids := make([]string, 0, len(accepted))
	for _, id := range accepted {
		ids = append(ids, id)
	}
	var total, distinct, confirmed, captures int
	if err := db.QueryRow(`SELECT count(*), count(DISTINCT idempotency_key), count(*) FILTER (WHERE status = 'confirmed') FROM orders.orders WHERE user_id = (SELECT user_id FROM orders.orders WHERE id = $1) AND idempotency_key LIKE 'replica-load-%'`,
		ids[0]).Scan(&total, &distinct, &confirmed); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM payments.payments WHERE status = 'captured' AND order_id = ANY($1::uuid[])`, ids).Scan(&captures); err != nil {
		t.Fatal(err)
	}
	var retaken int
	if err := db.QueryRow(`SELECT count(*) FROM payments.payments WHERE attempts > 1 AND order_id = ANY($1::uuid[])`, ids).Scan(&retaken); err != nil {
		t.Fatal(err)
	}
	// A payment whose claim the killed replica held waits for the lease:
	// then this subtest takes about a lease longer.
	t.Logf("%d orders accepted: %d in the database (%d keys), %d confirmed, %d captured; %d payments claimed again after the kill",
		len(accepted), total, distinct, confirmed, captures, retaken)
	if total != orders || distinct != orders {
		t.Errorf("the customer has %d load orders under %d keys, want %d: each accepted order exactly once", total, distinct, orders)
	}
	if confirmed != orders || captures != confirmed {
		t.Errorf("%d confirmed, %d captured; want all %d confirmed and as many captures", confirmed, captures, orders)
	}
}

// placeRetrying places an order with an Idempotency-Key, sending it again
// with the same key while the answer is lost (a replica killed under it)
// or refused for a while (502, 503), as a careful client does.
func placeRetrying(client *http.Client, base, token, key, productID string) (string, error) {
	body, _ := json.Marshal(map[string]any{"items": []map[string]any{{"product_id": productID, "quantity": 1}}, "payment_method": "pm_card_visa"})
	var last string
	for range 50 {
		req, err := http.NewRequest("POST", base+"/api/v1/orders", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			var o struct{ ID string }
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				return "", fmt.Errorf("202 without an order: %s", raw)
			}
			return o.ID, nil
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusConflict:
			// 409: the same key still in flight on the dead replica's
			// transaction, or being answered; try again.
			last = fmt.Sprintf("%d %s", resp.StatusCode, raw)
			time.Sleep(100 * time.Millisecond)
		default:
			return "", fmt.Errorf("%d %s", resp.StatusCode, raw)
		}
	}
	return "", fmt.Errorf("not accepted after 50 tries; last: %s", last)
}

// countEvents counts the events on topic about an order.
func countEvents(t *testing.T, db *sql.DB, topic, orderID string) int {
	t.Helper()
	var n int
	// #nosec G202 -- topic is one of this test's constants
	if err := db.QueryRow(`SELECT count(*) FROM bus."m_`+topic+`" WHERE payload->>'order_id' = $1`, orderID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
