package payment_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/payment"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// shop is the payment module alone, served behind the shop's middleware,
// with callers made by a fake authenticator and the order module played
// by events the test publishes.
type shop struct {
	*moduletest.Module
	API *testkit.API
	// DatabaseURL reaches the module's database as superuser.
	DatabaseURL string
}

// startPayment builds the payment module, as the shop does by default, on
// a database of its own, and serves it; its worker runs.
func startPayment(t testing.TB) *shop {
	t.Helper()
	return startPaymentWith(t, payment.Config{TestDelay: 2 * time.Second, ProviderTimeout: 10 * time.Second})
}

// startPaymentWith is startPayment with the module configured by cfg.
func startPaymentWith(t testing.TB, cfg payment.Config) *shop {
	t.Helper()
	files, err := migrations.For(payment.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := moduletest.New(t, testkit.ModuleSpec{Name: payment.Name, Schema: payment.Schema, Migrations: files}, payment.RegisterEvents)
	mod := payment.New(payment.Deps{DB: m.DB, Bus: m.Bus, Log: testkit.Logger(), Config: cfg})
	m.Start(t)
	m.Run(t, mod.Run)
	srv := m.Serve(t, mod.Routes, payment.Definition(payment.Config{}).OpenAPI)
	return &shop{Module: m, API: srv.API, DatabaseURL: m.ModuleDatabase.URL}
}

// Admin makes a member of staff and returns its id and session token.
func (s *shop) Admin(testing.TB) (id, token string) { return s.Auth.Admin() }

// Customer makes a customer and returns its id and session token.
func (s *shop) Customer(testing.TB) (id, token string) { return s.Auth.Customer() }

// paymentJSON is a payment as the API shows it.
type paymentJSON struct {
	ID             string  `json:"id"`
	OrderID        string  `json:"order_id"`
	UserID         string  `json:"user_id"`
	Amount         string  `json:"amount"`
	Currency       string  `json:"currency"`
	Method         string  `json:"method"`
	Status         string  `json:"status"`
	FailureReason  *string `json:"failure_reason"`
	Attempts       int     `json:"attempts"`
	RefundedAmount string  `json:"refunded_amount"`
	NetAmount      string  `json:"net_amount"`
	Refunds        []struct {
		ID     string `json:"id"`
		Amount string `json:"amount"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"refunds"`
	CapturedAt *string `json:"captured_at"`
	FailedAt   *string `json:"failed_at"`
}

// orderPayments asks GET /api/v1/payments?order_id= as token.
func orderPayments(t testing.TB, shop *shop, token, orderID string) (*testkit.Response, []paymentJSON) {
	t.Helper()
	r := shop.API.Do("GET", "/api/v1/payments?order_id="+orderID, nil, testkit.Bearer(token))
	var body struct {
		Items []paymentJSON `json:"items"`
	}
	if r.Status == http.StatusOK {
		r.Decode(t, &body)
	}
	return r, body.Items
}

// published is one message on a bus topic, as stored.
type published struct {
	Payload  map[string]any
	Metadata map[string]string
}

// messages reads every message of topic whose payload names orderID, as
// the superuser (modules cannot read the bus tables).
func messages(t testing.TB, db *sql.DB, topic, orderID string) []published {
	t.Helper()
	rows, err := db.QueryContext(context.Background(),
		`SELECT payload::text, metadata::text FROM bus."m_`+topic+`" WHERE payload->>'order_id' = $1 ORDER BY "offset"`, orderID)
	if err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
	defer rows.Close()
	var out []published
	for rows.Next() {
		var payload, metadata string
		if err := rows.Scan(&payload, &metadata); err != nil {
			t.Fatal(err)
		}
		var m published
		if err := json.Unmarshal([]byte(payload), &m.Payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(metadata), &m.Metadata); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
