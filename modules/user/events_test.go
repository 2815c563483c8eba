package user_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// TestRegister_PublishesUserRegisteredWithTheAccount shows the first real
// event: committed with the account, correlated with the request, and not
// published at all when registration fails.
func TestRegister_PublishesUserRegisteredWithTheAccount(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	r := shop.API.Do("POST", "/api/v1/users",
		map[string]string{"username": "ivan", "email": "ivan@example.com", "password": "ivan's password"},
		testkit.Header("X-Request-ID", "req-ivan-1"))
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	var u userJSON
	r.Decode(t, &u)
	// A failed registration (taken name) must publish nothing.
	if r := register(t, shop.API, "ivan", "ivan2@example.com", "ivan's password"); r.Status != http.StatusConflict {
		t.Fatalf("second register: %d", r.Status)
	}

	rows, err := testkit.OpenSQL(t, shop.DatabaseURL).Query(`SELECT payload::text, metadata::text FROM bus."m_user.registered.v1"`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var n int
	for rows.Next() {
		n++
		var payload, metadata string
		if err := rows.Scan(&payload, &metadata); err != nil {
			t.Fatal(err)
		}
		var ev struct {
			UserID   string   `json:"user_id"`
			Username string   `json:"username"`
			Roles    []string `json:"roles"`
		}
		var md map[string]string
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(metadata), &md); err != nil {
			t.Fatal(err)
		}
		if ev.UserID != u.ID || ev.Username != "ivan" || len(ev.Roles) != 1 || ev.Roles[0] != "customer" {
			t.Errorf("event payload = %s", payload)
		}
		if md["event"] != "user.registered.v1" || md["correlation_id"] != "req-ivan-1" || md["occurred_at"] == "" {
			t.Errorf("event metadata = %v", md)
		}
	}
	if n != 1 {
		t.Fatalf("user.registered.v1 published %d times, want 1", n)
	}

	metrics := string(shop.API.Do("GET", "/metrics", nil).Body)
	if !strings.Contains(metrics, `modshop_bus_messages_published{topic="user.registered.v1"} 1`) {
		t.Errorf("/metrics does not count the published event:\n%s", grepLines(metrics, "modshop_bus"))
	}

	_, admin := shop.Admin(t)
	_, cust := shop.Customer(t)
	if r := shop.API.Do("GET", "/api/v1/admin/bus", nil, testkit.Bearer(cust)); r.Status != http.StatusForbidden {
		t.Fatalf("customer on the bus page: %d, want 403", r.Status)
	}
	r = shop.API.Do("GET", "/api/v1/admin/bus", nil, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("bus overview: %d %s", r.Status, r.Body)
	}
	var overview struct {
		Topics []struct {
			Topic     string `json:"topic"`
			Published int    `json:"published"`
		} `json:"topics"`
	}
	r.Decode(t, &overview)
	published := -1
	for _, topic := range overview.Topics {
		if topic.Topic == "user.registered.v1" {
			published = topic.Published
		}
	}
	if published != 3 {
		t.Fatalf("bus overview = %+v, want user.registered.v1 with 3 messages (ivan, the admin, the customer)", overview)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
