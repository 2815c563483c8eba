package auth

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/httpx"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	os.Exit(m.Run())
}

// sessions is an Authenticator over a fixed set of tokens; "db-down"
// fails the way a lookup does while the database is away (database/sql's
// answer on a lost connection), "broken" the way a bug does.
type sessions map[string]Identity

func (s sessions) Authenticate(_ context.Context, token string) (Identity, error) {
	switch token {
	case "db-down":
		return Identity{}, fmt.Errorf("look up session: %w", driver.ErrBadConn)
	case "broken":
		return Identity{}, errors.New("session row cannot be decoded")
	}
	id, ok := s[token]
	if !ok {
		return Identity{}, ErrInvalidToken
	}
	return id, nil
}

var known = sessions{
	"customer-token": {UserID: "u1", Username: "carol", Roles: []string{"customer"}},
	"admin-token":    {UserID: "u2", Username: "ada", Roles: []string{"customer", RoleAdmin}},
}

// shop has one public, one signed-in and one admin route behind the
// platform's error renderer and the auth middleware.
func shop() *gin.Engine {
	r := gin.New()
	r.Use(httpx.Errors(slog.New(slog.NewTextHandler(io.Discard, nil))), Middleware(known))
	who := func(c *gin.Context) {
		id, ok := FromContext(c.Request.Context())
		if !ok {
			c.JSON(http.StatusOK, gin.H{"user": "", "token": ""})
			return
		}
		c.JSON(http.StatusOK, gin.H{"user": id.Username, "token": id.Token})
	}
	r.POST("/api/v1/sessions", who)
	r.GET("/api/v1/users/me", RequireUser(), who)
	r.GET("/api/v1/users", RequireRole(RoleAdmin), who)
	return r
}

type answer struct {
	status   int
	user     string
	detail   string
	wwwAuthn string
}

func call(t *testing.T, method, path string, set func(*http.Request)) answer {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if set != nil {
		set(req)
	}
	w := httptest.NewRecorder()
	shop().ServeHTTP(w, req)
	var body struct{ User, Token, Detail string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: body %q: %v", method, path, w.Body, err)
	}
	if w.Code == http.StatusOK && body.User != "" {
		// The identity carries the token that was presented, so log-out
		// revokes exactly that session.
		want := map[string]string{"carol": "customer-token", "ada": "admin-token"}[body.User]
		if body.Token != want {
			t.Errorf("identity token = %q, want %q", body.Token, want)
		}
	}
	return answer{w.Code, body.User, body.Detail, w.Header().Get("WWW-Authenticate")}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func cookie(tok string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: SessionCookie, Value: tok}) }
}

func TestMiddleware_TellsRoutesWhoIsCalling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path string
		set                func(*http.Request)
		status             int
		user, detail       string
	}{
		{"anonymous on a public route", "POST", "/api/v1/sessions", nil, 200, "", ""},
		{"anonymous on me", "GET", "/api/v1/users/me", nil, 401, "", "log in first"},
		{"anonymous on an admin route", "GET", "/api/v1/users", nil, 401, "", "log in first"},
		{"bearer", "GET", "/api/v1/users/me", bearer("customer-token"), 200, "carol", ""},
		{"bearer, any case", "GET", "/api/v1/users/me", func(r *http.Request) { r.Header.Set("Authorization", "bEaReR customer-token") }, 200, "carol", ""},
		{"cookie", "GET", "/api/v1/users/me", cookie("customer-token"), 200, "carol", ""},
		{"header beats cookie", "GET", "/api/v1/users/me", func(r *http.Request) { bearer("admin-token")(r); cookie("customer-token")(r) }, 200, "ada", ""},
		{"customer on an admin route", "GET", "/api/v1/users", bearer("customer-token"), 403, "", "admin role"},
		{"admin on an admin route", "GET", "/api/v1/users", cookie("admin-token"), 200, "ada", ""},
		{"stale bearer on me", "GET", "/api/v1/users/me", bearer("expired"), 401, "", "invalid or has expired"},
		{"stale cookie on me", "GET", "/api/v1/users/me", cookie("expired"), 401, "", "invalid or has expired"},
		{"stale bearer on an admin route", "GET", "/api/v1/users", bearer("expired"), 401, "", "invalid or has expired"},
		// A client still sending its old token must be able to log in again.
		{"stale bearer on log-in", "POST", "/api/v1/sessions", bearer("expired"), 200, "", ""},
		{"stale cookie on log-in", "POST", "/api/v1/sessions", cookie("expired"), 200, "", ""},
		{"basic auth on me", "GET", "/api/v1/users/me", func(r *http.Request) { r.SetBasicAuth("carol", "pw") }, 401, "", "invalid or has expired"},
		{"empty bearer on me", "GET", "/api/v1/users/me", func(r *http.Request) { r.Header.Set("Authorization", "Bearer") }, 401, "", ""},
		// The database being away is an outage (503, come back later); a bug is a 500.
		{"database down", "GET", "/api/v1/users/me", bearer("db-down"), 503, "", "try again"},
		{"database down, public route", "POST", "/api/v1/sessions", bearer("db-down"), 503, "", "try again"},
		{"a bug in the lookup", "GET", "/api/v1/users/me", bearer("broken"), 500, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := call(t, tt.method, tt.path, tt.set)
			if got.status != tt.status || got.user != tt.user || !strings.Contains(got.detail, tt.detail) {
				t.Fatalf("got %d user %q detail %q; want %d user %q detail containing %q",
					got.status, got.user, got.detail, tt.status, tt.user, tt.detail)
			}
			if got.status == http.StatusUnauthorized && !strings.HasPrefix(got.wwwAuthn, "Bearer") {
				t.Errorf("401 without a Bearer WWW-Authenticate challenge: %q", got.wwwAuthn)
			}
		})
	}
}

func TestMiddleware_StaleTokenChallengeSaysInvalidToken(t *testing.T) {
	t.Parallel()
	got := call(t, "GET", "/api/v1/users/me", bearer("expired"))
	if !strings.Contains(got.wwwAuthn, `error="invalid_token"`) {
		t.Errorf("WWW-Authenticate = %q, want error=\"invalid_token\" (RFC 6750)", got.wwwAuthn)
	}
	got = call(t, "GET", "/api/v1/users/me", nil)
	if strings.Contains(got.wwwAuthn, "error=") {
		t.Errorf("no token sent, yet WWW-Authenticate = %q", got.wwwAuthn)
	}
}

func TestIdentity_HasRole(t *testing.T) {
	t.Parallel()
	id := Identity{Roles: []string{"customer", "admin"}}
	if !id.HasRole("admin") || id.HasRole("Admin") || id.HasRole("staff") || (Identity{}).HasRole("customer") {
		t.Fatal("HasRole must match exactly the roles held")
	}
}
