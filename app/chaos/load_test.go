package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const password = "correct horse battery"

// client talks to the shop as a customer's app would.
type client struct {
	base string
	http *http.Client
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

// do sends one request; err is a transport error (refused, reset, timed
// out), status and body the answer otherwise.
func (c *client) do(method, path, token string, body any, header map[string]string) (status int, raw []byte, err error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// must sends a request that has to succeed with want (set-up steps, with
// the shop healthy).
func (c *client) must(t *testing.T, want int, method, path, token string, body any, out any) {
	t.Helper()
	status, raw, err := c.do(method, path, token, body, nil)
	if err != nil || status != want {
		t.Fatalf("%s %s: %d %v %s", method, path, status, err, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
}

func (c *client) login(t *testing.T, login string) string {
	t.Helper()
	var out struct{ Token string }
	c.must(t, http.StatusCreated, "POST", "/api/v1/sessions", "", map[string]string{"login": login, "password": password}, &out)
	return out.Token
}

// createAdmin makes an admin the way an operator does (`modshop users
// create --admin`) and logs in.
func createAdmin(t *testing.T, bin, databaseURL string, c *client) string {
	t.Helper()
	cmd := exec.Command(bin, "users", "create", "--admin", "--username", "chaos_admin", "--email", "chaos_admin@example.com") // #nosec G204 -- the binary this suite built
	cmd.Env = []string{"MODSHOP_DATABASE_URL=" + databaseURL, "MODSHOP_LOG_LEVEL=error", "GORACE=atexit_sleep_ms=0"}
	cmd.Stdin = strings.NewReader(password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("modshop users create: %v\n%s", err, out)
	}
	return c.login(t, "chaos_admin")
}

// createCustomer registers a customer and logs in; it returns the user id
// and a session token.
func createCustomer(t *testing.T, c *client, name string) (id, token string) {
	t.Helper()
	c.must(t, http.StatusCreated, "POST", "/api/v1/users", "", map[string]string{"username": name, "email": name + "@example.com", "password": password}, nil)
	var out struct {
		Token string
		User  struct{ ID string }
	}
	c.must(t, http.StatusCreated, "POST", "/api/v1/sessions", "", map[string]string{"login": name, "password": password}, &out)
	return out.User.ID, out.Token
}

// createProducts adds n products with plenty of stock: the load is about
// faults, not about running out.
func createProducts(t *testing.T, c *client, admin string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		var p struct{ ID string }
		c.must(t, http.StatusCreated, "POST", "/api/v1/products", admin,
			map[string]any{"sku": fmt.Sprintf("CHAOS-%d", i), "name": fmt.Sprintf("Chaos thing %d", i), "price": fmt.Sprintf("%d.50", 5+i), "stock": 1_000_000}, &p)
		ids = append(ids, p.ID)
	}
	return ids
}

// load places orders at a steady rate, each with an Idempotency-Key of its
// own, retrying a refused request with the same key until the shop
// accepts it, and remembers what it was told.
type load struct {
	c        *client
	token    string
	products []string

	mu       sync.Mutex
	next     int
	accepted map[string]string // Idempotency-Key -> order id, as answered
	times    []time.Time       // when each order was accepted
	refused  map[string]int    // refused attempts, by kind
	failures []string          // answers a retry cannot fix
}

func newLoad(c *client, token string, products []string) *load {
	return &load{c: c, token: token, products: products, accepted: map[string]string{}, refused: map[string]int{}}
}

// run places rate orders per second until stop is called; stop returns
// once every order begun has been accepted (or given up after a generous
// bound, which the checks then report).
func (l *load) run(rate float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				wg.Add(1)
				go func() {
					defer wg.Done()
					l.place()
				}()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// place places one order, retrying until it is accepted.
func (l *load) place() {
	l.mu.Lock()
	l.next++
	key := fmt.Sprintf("chaos-order-%d", l.next)
	l.mu.Unlock()
	// #nosec G404 -- test data
	items := []map[string]any{{"product_id": l.products[rand.IntN(len(l.products))], "quantity": 1 + rand.IntN(3)}}
	method := "pm_card_visa"
	switch n := rand.IntN(20); { // #nosec G404 -- test data
	case n == 0:
		method = "pm_card_chargeDeclined" // cancelled, stock released
	case n == 1:
		method = "pm_card_delayed" // paid after a while
	}
	body := map[string]any{"items": items, "payment_method": method}
	giveUp := time.Now().Add(5 * time.Minute)
	for {
		status, raw, err := l.c.do("POST", "/api/v1/orders", l.token, body, map[string]string{"Idempotency-Key": key})
		var kind string
		switch {
		case err != nil:
			kind = "connection"
		case status == http.StatusAccepted:
			var o struct{ ID string }
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				l.fail(fmt.Sprintf("order %s: 202 without an id: %s", key, raw))
				return
			}
			l.mu.Lock()
			l.accepted[key] = o.ID
			l.times = append(l.times, time.Now())
			l.mu.Unlock()
			return
		case status == http.StatusServiceUnavailable:
			kind = "503"
		case status >= 500:
			kind = fmt.Sprint(status)
		default:
			l.fail(fmt.Sprintf("order %s: %d %s", key, status, raw))
			return
		}
		l.mu.Lock()
		l.refused[kind]++
		l.mu.Unlock()
		if time.Now().After(giveUp) {
			l.fail(fmt.Sprintf("order %s: still refused after 5 minutes (%s: %v %s)", key, kind, err, raw))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, msg)
}

// acceptedBetween counts the orders accepted in [from, to).
func (l *load) acceptedBetween(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, at := range l.times {
		if !at.Before(from) && at.Before(to) {
			n++
		}
	}
	return n
}

// snapshot copies what the load knows so far.
func (l *load) snapshot() (accepted map[string]string, refused map[string]int, failures []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	accepted = make(map[string]string, len(l.accepted))
	for k, v := range l.accepted {
		accepted[k] = v
	}
	refused = make(map[string]int, len(l.refused))
	for k, v := range l.refused {
		refused[k] = v
	}
	return accepted, refused, append([]string(nil), l.failures...)
}
