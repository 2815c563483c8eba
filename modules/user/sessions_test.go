package user_test

import (
	"net/http"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

func TestLogin_ClearsLongDeadSessionsOfEveryone(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	register(t, shop.API, "rita", "rita@example.com", "rita's password")
	register(t, shop.API, "sam", "sam@example.com", "sam's password")
	shop.Login(t, "rita", "rita's password")
	shop.Login(t, "rita", "rita's password")
	// Rita's sessions ended long ago, and she never comes back.
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	if _, err := db.Exec(`UPDATE users.sessions SET expires_at = now() - interval '8 days'`); err != nil {
		t.Fatal(err)
	}
	shop.Login(t, "sam", "sam's password")
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM users.sessions WHERE expires_at < now()`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d sessions dead for 8 days are kept: the table grows with every log-in of users who never return", left)
	}
}

// TestSessions_ChangesOnOneProcessApplyAtOnceOnTheOther: two processes of
// the user module on one database, each with its session cache warm; a
// log-out, a role change and a suspension made through one are refused or
// applied by the other's very next request.
func TestSessions_ChangesOnOneProcessApplyAtOnceOnTheOther(t *testing.T) {
	t.Parallel()
	first, second := twoShops(t, nil)
	_, adminToken := first.Admin(t)
	admin := testkit.Bearer(adminToken)
	me := func(s *shop, token string) int {
		t.Helper()
		return s.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)).Status
	}
	staffList := func(s *shop, token string) int {
		t.Helper()
		return s.API.Do("GET", "/api/v1/users?limit=1", nil, testkit.Bearer(token)).Status
	}

	// Log-out.
	_, token := first.Customer(t)
	for range 2 { // the second answer comes from the cache
		if got := me(second, token); got != http.StatusOK {
			t.Fatalf("GET /users/me before the log-out: %d", got)
		}
	}
	if resp := first.API.Do("DELETE", "/api/v1/sessions/current", nil, testkit.Bearer(token)); resp.Status != http.StatusNoContent {
		t.Fatalf("log out: %d %s", resp.Status, resp.Body)
	}
	if got := me(second, token); got != http.StatusUnauthorized {
		t.Fatalf("logged out on one process, the other answers %d; want 401", got)
	}

	// Role change, granted and taken away.
	id, token := first.Customer(t)
	for _, c := range []struct {
		roles []string
		want  int
	}{{[]string{"customer"}, http.StatusForbidden}, {[]string{"admin", "customer"}, http.StatusOK}, {[]string{"customer"}, http.StatusForbidden}} {
		if resp := first.API.Do("PUT", "/api/v1/users/"+id+"/roles", map[string][]string{"roles": c.roles}, admin); resp.Status != http.StatusOK {
			t.Fatalf("set roles %v: %d %s", c.roles, resp.Status, resp.Body)
		}
		for range 2 {
			if got := staffList(second, token); got != c.want {
				t.Fatalf("roles set to %v on one process; the other answers the staff list %d, want %d", c.roles, got, c.want)
			}
		}
	}

	// Suspension.
	id, token = first.Customer(t)
	for range 2 {
		if got := me(second, token); got != http.StatusOK {
			t.Fatalf("GET /users/me before the suspension: %d", got)
		}
	}
	if resp := first.API.Do("POST", "/api/v1/users/"+id+"/suspension", nil, admin); resp.Status != http.StatusOK {
		t.Fatalf("suspend: %d %s", resp.Status, resp.Body)
	}
	if got := me(second, token); got != http.StatusUnauthorized {
		t.Fatalf("suspended on one process, the other answers %d; want 401", got)
	}
}
