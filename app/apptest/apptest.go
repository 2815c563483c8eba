// Package apptest starts a whole shop for tests: a fresh database on the
// test server, every module migrated, served on a loopback port, with an
// API client that checks each response against the OpenAPI document.
package apptest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/testkit"
)

// Shop is a running shop under test.
type Shop struct {
	*app.Shop
	URL         string
	DatabaseURL string
	API         *testkit.API
}

// Start opens a shop on its own new database. change adjusts the
// configuration first.
func Start(tb testing.TB, change ...func(*app.Config)) *Shop {
	tb.Helper()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = testkit.NewDatabase(tb)
	cfg.DBMaxConns = 4
	for _, c := range change {
		c(&cfg)
	}
	shop, err := app.Open(context.Background(), cfg, Logger())
	if err != nil {
		tb.Fatalf("open shop: %v", err)
	}
	srv := httptest.NewServer(shop.Handler())
	tb.Cleanup(func() {
		srv.Close()
		if err := shop.Close(context.Background()); err != nil {
			tb.Errorf("close shop: %v", err)
		}
	})
	return &Shop{Shop: shop, URL: srv.URL, DatabaseURL: cfg.DatabaseURL, API: testkit.NewAPI(tb, srv.URL, shop.OpenAPI())}
}

// Logger logs to stderr when MODSHOP_TEST_LOG is set, else nowhere; a
// line logged inside a span carries its trace and span ids, as the shop's.
func Logger() *slog.Logger {
	if os.Getenv("MODSHOP_TEST_LOG") != "" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(io.Discard, nil)))
}

var seq atomic.Int64

// Unique returns a name no other call in this process returns.
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%10000, seq.Add(1))
}

// Customer registers a new customer and logs in; it returns the user id
// and a session token.
func (s *Shop) Customer(tb testing.TB) (id, token string) {
	tb.Helper()
	name := Unique("cust")
	return s.register(tb, name, false)
}

// Admin creates an admin (as `modshop users create --admin` does) and logs in.
func (s *Shop) Admin(tb testing.TB) (id, token string) {
	tb.Helper()
	return s.register(tb, Unique("admin"), true)
}

func (s *Shop) register(tb testing.TB, name string, admin bool) (string, string) {
	tb.Helper()
	const password = "correct horse battery"
	id, err := s.CreateUser(context.Background(), name, name+"@example.com", password, admin)
	if err != nil {
		tb.Fatalf("create user %s: %v", name, err)
	}
	return id, s.Login(tb, name, password)
}

// Login logs in and returns the session token.
func (s *Shop) Login(tb testing.TB, login, password string) string {
	tb.Helper()
	resp := s.Client(tb).Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
	if resp.Status != 201 {
		tb.Fatalf("log in %s: %d %s", login, resp.Status, resp.Body)
	}
	var out struct{ Token string }
	resp.Decode(tb, &out)
	return out.Token
}
