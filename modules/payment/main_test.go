package payment_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// paymentJSON is a payment as the API shows it.
type paymentJSON struct {
	ID             string  `json:"id"`
	OrderID        string  `json:"order_id"`
	UserID         string  `json:"user_id"`
	Amount         string  `json:"amount"`
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
func orderPayments(t testing.TB, shop *apptest.Shop, token, orderID string) (*testkit.Response, []paymentJSON) {
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

// waitFor polls cond until it holds, failing the test after 20s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openDB(t testing.TB, dbURL string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func queryInt(t testing.TB, db *sql.DB, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
