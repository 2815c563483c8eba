package fuzz_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const password = "correct horse battery"

// shop is one running shop that every input of a fuzz target is sent to
// (starting one per input would cost seconds): nothing is reset between
// inputs, so each check compares the shop just before and just after its
// own request. Inputs name the shop's accounts and resources through
// placeholders ($PRODUCT, $CUSTOMER_ID, …; see vars), which is how static
// seeds reach past "no such product" into the deeper paths.
type shop struct {
	*apptest.Shop
	db        *sql.DB
	stateSQL  string
	admin     string // session tokens
	customer  string
	vars      map[string]string
	placehold *strings.Replacer
}

// startShop starts the target's shop with an admin, a customer, a second
// customer whose roles may be changed, a category and two products (one
// cheap with plenty of stock, one at the highest price), and an order.
func startShop(f *testing.F) *shop {
	f.Helper()
	s := &shop{Shop: apptest.Start(f, func(c *app.Config) {
		c.LoginPerAccount, c.LoginPerClient = 1<<30, 1<<30 // fuzzing logs in far more often than anyone
		c.RegisterPerClient = 1 << 30                      // and registers far more often
		c.DBMaxConns = 2
	})}
	db, err := sql.Open("pgx", s.DatabaseURL)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	s.db = db
	adminID, admin := s.Admin(f)
	customerName := apptest.Unique("fuzzcust")
	customerID, err := s.CreateUser(context.Background(), customerName, customerName+"@example.com", password, false)
	if err != nil {
		f.Fatal(err)
	}
	s.admin, s.customer = admin, s.Login(f, customerName, password)
	otherID, _ := s.Customer(f)
	s.vars = map[string]string{
		"$ADMIN_ID":       adminID,
		"$CUSTOMER_ID":    customerID,
		"$CUSTOMER_NAME":  customerName,
		"$CUSTOMER_EMAIL": customerName + "@example.com",
		"$OTHER_ID":       otherID,
		"$PASSWORD":       password,
	}
	s.created(f, "POST", "/api/v1/categories", `{"slug":"fuzz-kitchen","name":"Kitchen"}`, "")
	s.vars["$CATEGORY"] = "fuzz-kitchen"
	s.vars["$PRODUCT"] = s.created(f, "POST", "/api/v1/products",
		`{"sku":"FUZZ-MUG","name":"Ceramic mug","description":"A mug for fuzzing.","price":"10.00","stock":1000000,"categories":["fuzz-kitchen"]}`, "id")
	s.vars["$PRICEY"] = s.created(f, "POST", "/api/v1/products",
		`{"sku":"FUZZ-GOLD","name":"Golden teapot","price":"99999999.99","stock":1000000}`, "id")
	s.vars["$ORDER"] = s.created(f, "POST", "/api/v1/orders",
		`{"items":[{"product_id":"`+s.vars["$PRODUCT"]+`","quantity":1}],"payment_method":"pm_card_visa"}`, "id")
	s.CheckInvariants(f) // the order is final: the shop is at rest before the first input
	pairs := []string{}
	for k, v := range s.vars {
		pairs = append(pairs, k, v)
	}
	s.placehold = strings.NewReplacer(pairs...)
	s.stateSQL = stateQuery(f, db)
	return s
}

// created sends a request that must succeed while the shop is set up and
// returns the field named of its answer.
func (s *shop) created(f *testing.F, method, path, body, field string) string {
	f.Helper()
	token := s.admin
	if strings.HasPrefix(path, "/api/v1/orders") {
		token = s.customer
	}
	r := s.API.Do(method, path, testkit.Raw(body), testkit.Bearer(token))
	if r.Status >= 300 {
		f.Fatalf("set up %s %s: %d %s", method, path, r.Status, r.Body)
	}
	if field == "" {
		return ""
	}
	var out map[string]any
	r.Decode(f, &out)
	v, _ := out[field].(string)
	return v
}

// newOrder places an order paid with pm_card_delayed and waits until its
// payment is with the provider, which holds it for MODSHOP_PAYMENT_TEST_DELAY
// (2 s): until then the order can be cancelled, and nothing moves in the
// shop by itself.
func (s *shop) newOrder(t testing.TB) string {
	t.Helper()
	r := testkit.NewAPI(t, s.URL, s.OpenAPI()).Do("POST", "/api/v1/orders",
		testkit.Raw(s.fill([]byte(`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_delayed"}`))), s.asCustomer())
	if r.Status != http.StatusAccepted {
		t.Fatalf("place an order to cancel: %d %s", r.Status, r.Body)
	}
	var o struct{ ID string }
	r.Decode(t, &o)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var status string
		err := s.db.QueryRow(`SELECT status FROM payments.payments WHERE order_id = $1`, o.ID).Scan(&status)
		if err == nil && status == "processing" {
			return o.ID
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: its payment did not reach the provider within 30s (%q)", o.ID, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fill puts the shop's ids where an input names them.
func (s *shop) fill(b []byte) []byte { return []byte(s.placehold.Replace(string(b))) }

// send sends one fuzzed request and checks what every answer must be,
// whatever the input:
//   - never a server error (5xx);
//   - an error is problem+json, and the answer is as the OpenAPI document
//     says (the test client checks both);
//   - a refusal (4xx) leaves every module's data and the bus as they were;
//   - when the request published events, the shop settles with its
//     invariants kept and no new dead letter.
//
// body nil sends no body.
func (s *shop) send(t testing.TB, method, path string, body []byte, opts ...testkit.Option) *testkit.Response {
	t.Helper()
	before := s.state(t)
	var b any
	if body != nil {
		b = testkit.Raw(body)
	}
	r := testkit.NewAPI(t, s.URL, s.OpenAPI()).Do(method, path, b, opts...)
	after := s.state(t)
	switch {
	case r.Status >= 500:
		t.Fatalf("%s %s %.300q: %d %s", method, path, body, r.Status, r.Body)
	case r.Status >= 400:
		if changed := before.changed(after); len(changed) > 0 {
			t.Fatalf("%s %s %.300q: refused with %d %s, yet changed %s", method, path, body, r.Status, r.Body, strings.Join(changed, ", "))
		}
	case before.published() != after.published():
		s.CheckInvariants(t)
		if settled := s.state(t); settled.deadLetters() != before.deadLetters() {
			t.Fatalf("%s %s %.300q: answered %d, then a handler dead-lettered its events", method, path, body, r.Status)
		}
	}
	return r
}

// shopState is a digest of each table of every module and of the bus.
type shopState map[string]string

func (s *shop) state(t testing.TB) shopState {
	t.Helper()
	rows, err := s.db.Query(s.stateSQL)
	if err != nil {
		t.Fatalf("read the shop's state: %v", err)
	}
	defer rows.Close()
	st := shopState{}
	for rows.Next() {
		var table, digest string
		if err := rows.Scan(&table, &digest); err != nil {
			t.Fatal(err)
		}
		st[table] = digest
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read the shop's state: %v", err)
	}
	return st
}

func (st shopState) changed(after shopState) []string {
	var out []string
	for table, digest := range after {
		if st[table] != digest {
			out = append(out, table)
		}
	}
	slices.Sort(out)
	return out
}

// published sums up what has been published: each topic's last offset.
func (st shopState) published() string {
	var out []string
	for table, digest := range st {
		if strings.HasPrefix(table, "bus.m_") {
			out = append(out, table+"="+digest)
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func (st shopState) deadLetters() string { return st["bus.dead_letters"] }

// stateQuery builds the query behind state: one digest per table of the
// module schemas, each topic's last offset (what was published), and the
// dead letters. It leaves out what moves by itself or records attempts by
// design: the bus's own bookkeeping (consumer offsets and the like) and the
// modules' inboxes (pruned by age), throttles (a refused log-in counts;
// tables named *throttle* or *attempt*), and a dead letter's replay count
// and last error (a replay whose handler fails again is a 409 that records
// the new error).
func stateQuery(f *testing.F, db *sql.DB) string {
	f.Helper()
	rows, err := db.Query(`SELECT table_schema, table_name FROM information_schema.tables
		WHERE table_schema IN ('users', 'products', 'orders', 'payments', 'bus') AND table_type = 'BASE TABLE'
		ORDER BY 1, 2`)
	if err != nil {
		f.Fatal(err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var schema, table string
		if err := rows.Scan(&schema, &table); err != nil {
			f.Fatal(err)
		}
		name := schema + "." + table
		from := fmt.Sprintf("%q.%q", schema, table)
		var digest string
		switch {
		case table == "processed_messages", strings.Contains(table, "throttle"), strings.Contains(table, "attempt"):
			continue
		case schema == "bus" && strings.HasPrefix(table, "m_"):
			digest = `SELECT coalesce(max("offset"), 0)::text FROM ` + from
		case name == "bus.dead_letters":
			digest = `SELECT md5(coalesce(string_agg(concat_ws('|', id, resolved_at, resolution), ',' ORDER BY id), '')) FROM ` + from
		case schema == "bus":
			continue
		default:
			digest = `SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM ` + from + ` t`
		}
		parts = append(parts, fmt.Sprintf("SELECT '%s', (%s)", name, digest))
	}
	if err := rows.Err(); err != nil {
		f.Fatal(err)
	}
	if len(parts) < 10 {
		f.Fatalf("only %d tables to watch: %v", len(parts), parts)
	}
	return strings.Join(parts, "\nUNION ALL ")
}

// asAdmin and asCustomer authenticate a fuzzed request.
func (s *shop) asAdmin() testkit.Option    { return testkit.Bearer(s.admin) }
func (s *shop) asCustomer() testkit.Option { return testkit.Bearer(s.customer) }

// reaches sends a request that the shop must accept through send, before
// the target fuzzes: it shows that the target's requests get past
// authentication and routing into the handler, so that the refusals the
// fuzzer sees are the handler's own.
func (s *shop) reaches(f *testing.F, method, path string, body []byte, opts ...testkit.Option) *testkit.Response {
	f.Helper()
	r := s.send(f, method, s.placehold.Replace(path), s.fill(body), opts...)
	if r.Status < 200 || r.Status > 299 {
		f.Fatalf("%s %s %s: %d %s, want a success before fuzzing", method, path, body, r.Status, r.Body)
	}
	return r
}
