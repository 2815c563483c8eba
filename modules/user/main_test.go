package user_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// settings are the shop's settings the user module's tests change: the
// module's configuration, and the proxies the server believes.
type settings struct {
	user.Config
	TrustedProxies string
}

// defaults are the shop's defaults (app/config.go).
func defaults() settings {
	return settings{Config: user.Config{
		SessionTTL:       24 * time.Hour,
		Throttle:         user.ThrottleConfig{PerAccountBurst: 5, PerClientBurst: 30, Window: 15 * time.Minute},
		RegisterThrottle: user.RegisterThrottleConfig{PerClientBurst: 10, Window: time.Hour},
		PasswordHashes:   user.HashConfig{Wait: 3 * time.Second},
	}}
}

// shop is the user module alone, served behind the shop's middleware with
// its own authenticator, the bus's staff pages and /metrics.
type shop struct {
	*moduletest.Module
	module *user.Module
	API    *testkit.API
	URL    string
	// DatabaseURL reaches the module's database as superuser.
	DatabaseURL string
}

// startUser builds the user module with the shop's defaults as change
// adjusts them, on a database of its own, and serves it.
func startUser(t *testing.T, change ...func(*settings)) *shop {
	t.Helper()
	files, err := migrations.For(user.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := moduletest.New(t, testkit.ModuleSpec{Name: user.Name, Schema: user.Schema, Migrations: files}, user.RegisterEvents)
	return serveUser(t, m, change...)
}

// twoShops is two processes of the user module on one database.
func twoShops(t *testing.T, change func(*settings)) (*shop, *shop) {
	t.Helper()
	if change == nil {
		change = func(*settings) {}
	}
	first := startUser(t, change)
	second := serveUser(t, first.Replica(t), change)
	return first, second
}

func serveUser(t *testing.T, m *moduletest.Module, change ...func(*settings)) *shop {
	t.Helper()
	s := defaults()
	for _, c := range change {
		c(&s)
	}
	s.Metrics = m.Metrics.Registry
	mod := user.New(user.Deps{DB: m.DB, Bus: m.Bus, Log: testkit.Logger(), Config: s.Config})
	m.Start(t)
	m.Run(t, mod.Run)
	var proxies []string
	if s.TrustedProxies != "" {
		proxies = strings.Split(s.TrustedProxies, ",")
	}
	srv := m.ServeConfig(t, moduletest.ServerConfig{
		Routes:         []func(*gin.RouterGroup){mod.Routes, m.Bus.Routes},
		OpenAPI:        [][]byte{user.Definition(s.Config).OpenAPI, bus.OpenAPI()},
		Authenticator:  mod.Authenticator(),
		TrustedProxies: proxies,
	})
	return &shop{Module: m, module: mod, API: srv.API, URL: srv.URL, DatabaseURL: m.ModuleDatabase.URL}
}

var seq atomic.Int64

// unique returns a name no other call in this process returns.
func unique(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%10000, seq.Add(1))
}

// Customer creates a customer (as `modshop users create` does) and logs
// in; it returns the user id and a session token.
func (s *shop) Customer(t *testing.T) (id, token string) {
	t.Helper()
	return s.create(t, unique("cust"), false)
}

// Admin creates an admin and logs in.
func (s *shop) Admin(t *testing.T) (id, token string) {
	t.Helper()
	return s.create(t, unique("admin"), true)
}

func (s *shop) create(t *testing.T, name string, admin bool) (string, string) {
	t.Helper()
	const password = "correct horse battery"
	u, err := s.module.CreateUser(context.Background(), name, name+"@example.com", password, admin)
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u.ID, s.Login(t, name, password)
}

// Login logs in and returns the session token.
func (s *shop) Login(t *testing.T, login, password string) string {
	t.Helper()
	resp := s.API.Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
	if resp.Status != http.StatusCreated {
		t.Fatalf("log in %s: %d %s", login, resp.Status, resp.Body)
	}
	var out struct{ Token string }
	resp.Decode(t, &out)
	return out.Token
}
