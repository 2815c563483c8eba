package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
)

// The storefront a team builds apart from the embedded web UI, on its own
// origin, and a page the operator never listed.
const (
	storefrontOrigin = "http://store.example:3000"
	strangerOrigin   = "https://evil.example"
)

// fromPage is what a browser sends with a page's fetch to another origin
// of the same site (another port, a sibling subdomain).
func fromPage(origin string, more ...string) map[string]string {
	h := map[string]string{"Origin": origin, "Sec-Fetch-Site": "same-site", "Content-Type": "application/json"}
	for i := 0; i+1 < len(more); i += 2 {
		h[more[i]] = more[i+1]
	}
	return h
}

func preflightFrom(t *testing.T, base, origin string) *http.Response {
	t.Helper()
	resp, _ := do(t, "OPTIONS", base+"/api/v1/sessions", "", map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
	})
	return resp
}

// logIn logs the customer in from a page of origin and returns the answer
// and its session cookie.
func logIn(t *testing.T, base, origin, login string) (*http.Response, *http.Cookie) {
	t.Helper()
	resp, raw := do(t, "POST", base+"/api/v1/sessions", `{"login":"`+login+`","password":"correct horse battery"}`, fromPage(origin))
	for _, c := range resp.Cookies() {
		if c.Name == "modshop_session" {
			return resp, c
		}
	}
	if resp.StatusCode == http.StatusCreated {
		t.Fatalf("logged in without a session cookie: %s", raw)
	}
	return resp, nil
}

func customerName(t *testing.T, shop *apptest.Shop) string {
	t.Helper()
	name := apptest.Unique("shopper")
	if _, err := shop.CreateUser(context.Background(), name, name+"@example.com", "correct horse battery", false); err != nil {
		t.Fatal(err)
	}
	return name
}

// TestCORS_AListedStorefrontUsesTheAPIWithItsCookie: with the storefront's
// origin in MODSHOP_CORS_ORIGINS, its preflight is answered, it logs in and
// reads the account with the session cookie, and can read every answer;
// another origin gets no CORS and its log-in is refused.
func TestCORS_AListedStorefrontUsesTheAPIWithItsCookie(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) { c.CORSOrigins = storefrontOrigin + ",https://other.example" })
	name := customerName(t, shop)

	pre := preflightFrom(t, shop.URL, storefrontOrigin)
	if pre.StatusCode != http.StatusNoContent || pre.Header.Get("Access-Control-Allow-Origin") != storefrontOrigin ||
		pre.Header.Get("Access-Control-Allow-Credentials") != "true" || pre.Header.Get("Access-Control-Max-Age") == "" {
		t.Fatalf("preflight from the storefront: %d %v", pre.StatusCode, pre.Header)
	}

	resp, cookie := logIn(t, shop.URL, storefrontOrigin, name)
	if resp.StatusCode != http.StatusCreated || cookie == nil {
		t.Fatalf("log-in from the storefront: %d", resp.StatusCode)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != storefrontOrigin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("the log-in's answer is not readable by the storefront: %v", resp.Header)
	}
	me, raw := do(t, "GET", shop.URL+"/api/v1/users/me", "", fromPage(storefrontOrigin, "Cookie", cookie.Name+"="+cookie.Value))
	if me.StatusCode != http.StatusOK || me.Header.Get("Access-Control-Allow-Origin") != storefrontOrigin || !strings.Contains(string(raw), name) {
		t.Errorf("the storefront reads the account with its cookie: %d %v %s", me.StatusCode, me.Header, raw)
	}
	if !strings.Contains(me.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
		t.Errorf("the request id is hidden from the storefront: %q", me.Header.Get("Access-Control-Expose-Headers"))
	}

	// Not listed: no CORS, and the CSRF check refuses its unsafe requests.
	if pre := preflightFrom(t, shop.URL, strangerOrigin); pre.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from an unlisted origin: %d %v", pre.StatusCode, pre.Header)
	}
	resp, cookie = logIn(t, shop.URL, strangerOrigin, name)
	if resp.StatusCode != http.StatusForbidden || cookie != nil || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("log-in from an unlisted origin: %d (cookie %v) %v, want 403 without CORS", resp.StatusCode, cookie, resp.Header)
	}
}

// TestCORS_NothingListedIsAsBefore: without MODSHOP_CORS_ORIGINS no answer
// carries CORS headers and another origin's log-in is refused.
func TestCORS_NothingListedIsAsBefore(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	name := customerName(t, shop)
	pre := preflightFrom(t, shop.URL, storefrontOrigin)
	resp, cookie := logIn(t, shop.URL, storefrontOrigin, name)
	for _, r := range []*http.Response{pre, resp} {
		for k := range r.Header {
			if strings.HasPrefix(k, "Access-Control-") || k == "Vary" {
				t.Errorf("%s %s: %s: %q with nothing listed", r.Request.Method, r.Request.URL.Path, k, r.Header.Get(k))
			}
		}
	}
	if pre.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("a preflight with nothing listed: %d, want 405 as before", pre.StatusCode)
	}
	if resp.StatusCode != http.StatusForbidden || cookie != nil {
		t.Errorf("log-in from another origin with nothing listed: %d, want 403", resp.StatusCode)
	}
}

// TestCORS_TheGatewayAnswersCORS: the gateway answers preflights itself and
// puts its own CORS headers on what the processes behind it answer, once.
func TestCORS_TheGatewayAnswersCORS(t *testing.T) {
	t.Parallel()
	// The process behind is told the same list (its CSRF check trusts it)
	// and answers CORS too: the gateway must not pass two on.
	shop := apptest.Start(t, func(c *app.Config) { c.CORSOrigins = storefrontOrigin })
	name := customerName(t, shop)
	gw := startGateway(t, "--route", "/="+shop.URL, "--cors-origins", storefrontOrigin)

	pre := preflightFrom(t, gw, storefrontOrigin)
	if pre.StatusCode != http.StatusNoContent || len(pre.Header.Values("Access-Control-Allow-Origin")) != 1 {
		t.Fatalf("preflight through the gateway: %d %v", pre.StatusCode, pre.Header)
	}
	resp, cookie := logIn(t, gw, storefrontOrigin, name)
	if resp.StatusCode != http.StatusCreated || cookie == nil {
		t.Fatalf("log-in from the storefront through the gateway: %d", resp.StatusCode)
	}
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != storefrontOrigin {
		t.Errorf("Access-Control-Allow-Origin through the gateway: %q, want the storefront once", got)
	}
	doc, raw := do(t, "GET", gw+"/api/openapi.json", "", fromPage(storefrontOrigin))
	if doc.Header.Get("Access-Control-Allow-Origin") != storefrontOrigin || !json.Valid(raw) {
		t.Errorf("the gateway's own document is not readable by the storefront: %v", doc.Header)
	}
	resp, _ = logIn(t, gw, strangerOrigin, name)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("log-in from an unlisted origin through the gateway: %d %v, want 403 without CORS", resp.StatusCode, resp.Header)
	}
}

func TestCORS_OriginsThatAreNotOriginsAreRefused(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"*", "https://store.example/", "store.example", "https://store.example:443"} {
		env := map[string]string{"MODSHOP_CORS_ORIGINS": bad, "MODSHOP_DATABASE_URL": "postgres://nobody@127.0.0.1:1/none", "MODSHOP_HTTP_ADDR": "127.0.0.1:0"}
		for _, args := range [][]string{{"serve"}, {"gateway", "--route", "/=http://127.0.0.1:1"}} {
			err := app.Run(context.Background(), app.Env{Args: args, Stdout: io.Discard, Stderr: io.Discard,
				Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			if err == nil || !strings.Contains(err.Error(), "MODSHOP_CORS_ORIGINS") {
				t.Errorf("%v with MODSHOP_CORS_ORIGINS=%q: %v, want it refused by name", args, bad, err)
			}
		}
	}
}
