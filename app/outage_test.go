package app_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// TestOutage_APIAnswers503WhileTheDatabaseIsAwayAndRecovers runs a shop
// whose every database connection goes through a proxy, then cuts it:
// requests that need the database (a listing, a session lookup, a log-in,
// a customer's orders) answer 503 problem+json with Retry-After, naming
// nothing of the database. Once the proxy lets connections through again,
// the same requests succeed, and an order placed then goes through the
// whole saga: the shop came back by itself.
func TestOutage_APIAnswers503WhileTheDatabaseIsAwayAndRecovers(t *testing.T) {
	t.Parallel()
	dbURL, proxy := testkit.NewProxiedDatabase(t)
	shop := apptest.Start(t, func(c *app.Config) { c.DatabaseURL = dbURL })
	w := sagasuite.NewWorld(t, shop, map[string]int{"BEANS": 10})
	name := apptest.Unique("outage")
	const password = "correct horse battery"
	if _, err := shop.CreateUser(t.Context(), name, name+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	token := shop.Login(t, name, password)

	requests := []struct {
		method, path string
		body         any
		opts         []testkit.Option
		ok           int
	}{
		{"GET", "/api/v1/products", nil, nil, http.StatusOK},
		{"GET", "/api/v1/users/me", nil, []testkit.Option{testkit.Bearer(token)}, http.StatusOK},
		{"POST", "/api/v1/sessions", map[string]string{"login": name, "password": password}, nil, http.StatusCreated},
		{"GET", "/api/v1/orders", nil, []testkit.Option{testkit.Bearer(token)}, http.StatusOK},
	}
	u, _ := url.Parse(dbURL)
	secrets := []string{u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username()}

	proxy.Cut()
	for _, rq := range requests {
		r := w.API.Do(rq.method, rq.path, rq.body, rq.opts...)
		if r.Status != http.StatusServiceUnavailable {
			t.Errorf("database away: %s %s answered %d %s, want 503", rq.method, rq.path, r.Status, r.Body)
			continue
		}
		r.Problem(t)
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("database away: %s %s: Retry-After %q, want seconds", rq.method, rq.path, r.Header.Get("Retry-After"))
		}
		for _, s := range secrets {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("database away: %s %s reveals %q: %s", rq.method, rq.path, s, r.Body)
			}
		}
	}

	proxy.Restore()
	// The pools reconnect on the next request; a connection the cut broke
	// may cost one more 503 first.
	deadline := time.Now().Add(30 * time.Second)
	for _, rq := range requests {
		for {
			r := w.API.Do(rq.method, rq.path, rq.body, rq.opts...)
			if r.Status == rq.ok {
				break
			}
			if r.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("database back: %s %s answered %d %s, want %d", rq.method, rq.path, r.Status, r.Body, rq.ok)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	_, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"BEANS": 1})
	if o.ID == "" {
		t.Fatal("database back: placing an order failed")
	}
	w.WaitStatus(t, o.ID, "confirmed")
	shop.CheckInvariants(t)
}

// TestReadyz_SaysOnlyReadyOrNotAndLogsTheCauseOncePerChange probes a shop
// whose database goes away and comes back: /readyz answers 503 naming
// nothing of the database (user, name, host, port), and the log gets the
// cause once when the shop stops being ready and one line when it is
// ready again, not one per probe.
func TestReadyz_SaysOnlyReadyOrNotAndLogsTheCauseOncePerChange(t *testing.T) {
	t.Parallel()
	dbURL, proxy := testkit.NewProxiedDatabase(t)
	var logged syncBuffer
	shop := openShop(t, dbURL, slog.New(slog.NewTextHandler(&logged, nil)))
	u, _ := url.Parse(dbURL)
	secrets := []string{u.Hostname(), u.Port(), strings.TrimPrefix(u.Path, "/"), u.User.Username()}

	proxy.Cut()
	for range 3 {
		r := shop.API.Do("GET", "/readyz", nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("database away: /readyz answered %d %s, want 503", r.Status, r.Body)
		}
		r.Problem(t)
		for _, s := range secrets {
			if strings.Contains(string(r.Body), s) {
				t.Errorf("/readyz reveals %q: %s", s, r.Body)
			}
		}
	}
	if n := strings.Count(logged.String(), "msg=\"not ready\""); n != 1 {
		t.Errorf("three failed probes logged %d 'not ready' lines, want 1:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), strings.TrimPrefix(u.Path, "/")) && !strings.Contains(logged.String(), u.Port()) {
		t.Errorf("the log does not say what is wrong:\n%s", logged.String())
	}

	proxy.Restore()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := shop.API.Do("GET", "/readyz", nil)
		if r.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database back: /readyz still answers %d %s", r.Status, r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	shop.API.Do("GET", "/readyz", nil)
	if n := strings.Count(logged.String(), "msg=\"ready again\""); n != 1 {
		t.Errorf("recovery logged %d 'ready again' lines, want 1:\n%s", n, logged.String())
	}
}

// openShop opens a shop on dbURL that logs to log, as apptest.Start does.
func openShop(t *testing.T, dbURL string, log *slog.Logger) *apptest.Shop {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.DBMaxConns = 4
	shop, err := app.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("open shop: %v", err)
	}
	srv := httptest.NewServer(shop.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := shop.Close(context.Background()); err != nil {
			t.Errorf("close shop: %v", err)
		}
	})
	return &apptest.Shop{Shop: shop, URL: srv.URL, DatabaseURL: dbURL, API: testkit.NewAPI(t, srv.URL, shop.OpenAPI())}
}
