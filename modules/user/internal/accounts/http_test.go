package accounts_test

// These tests need PostgreSQL (TEST_DATABASE_URL, or the embedded test
// server): each was a 500 that only the database could provoke.

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

const password = "a long enough secret"

func newCustomer(t *testing.T, shop *userShop) string {
	t.Helper()
	name := unique("cust")
	resp := shop.API.Do("POST", "/api/v1/users", map[string]string{"username": name, "email": name + "@example.com", "password": password})
	if resp.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Status, resp.Body)
	}
	return name
}

func TestLogin_UserAgentThatIsNotUTF8StillLogsIn(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	name := newCustomer(t, shop)
	// HTTP allows any byte from 0x80 up in a header; PostgreSQL refuses to
	// store text that is not UTF-8.
	resp := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": password},
		testkit.Header("User-Agent", "Mozilla/5.0 \xff\xfe (latin-1: caf\xe9)"))
	if resp.Status != http.StatusCreated {
		t.Fatalf("log in with a latin-1 User-Agent: %d %s, want 201", resp.Status, resp.Body)
	}
}

func TestLogin_NULInTheLoginIs400(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	resp := shop.API.Do("POST", "/api/v1/sessions", testkit.Raw(`{"login":"alice\u0000","password":"whatever12"}`))
	if resp.Status != http.StatusBadRequest {
		t.Fatalf("login holding NUL: %d %s, want 400", resp.Status, resp.Body)
	}
	resp.Problem(t)
}

func TestLogin_StaleBearerTokenDoesNotStopLoggingInAgain(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	name := newCustomer(t, shop)
	token := shop.Login(t, name, password)
	if resp := shop.API.Do("DELETE", "/api/v1/sessions/current", nil, testkit.Bearer(token)); resp.Status != http.StatusNoContent {
		t.Fatalf("log out: %d %s", resp.Status, resp.Body)
	}
	// A client that still sends its old token, as API clients with a
	// default Authorization header do, must be able to log in again.
	resp := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": password}, testkit.Bearer(token))
	if resp.Status != http.StatusCreated {
		t.Fatalf("log in again with the revoked token still attached: %d %s, want 201", resp.Status, resp.Body)
	}
	// Where a caller is needed, the old token still gets a clear 401.
	resp = shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token))
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("me with the revoked token: %d %s, want 401", resp.Status, resp.Body)
	}
}

func TestListUsers_ForgedCursorIs400(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, admin := shop.Admin(t)
	const id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	for _, forged := range []string{
		"2026-01-01T00:00:00Z|urn:uuid:" + id, // uuid.Parse takes it, PostgreSQL does not
		"2026-01-01T00:00:00Z|{" + id + "}",
		"2026-01-01T00:00:00Z|not-a-uuid",
	} {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(forged))
		resp := shop.API.Do("GET", "/api/v1/users?cursor="+cursor, nil, testkit.Bearer(admin))
		if resp.Status != http.StatusBadRequest {
			t.Errorf("cursor %q: %d %s, want 400", forged, resp.Status, resp.Body)
		}
	}
}
