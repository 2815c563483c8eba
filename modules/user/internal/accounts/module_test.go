package accounts_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// userShop is the user module alone (platform/testkit/moduletest) with the
// shop's defaults, served behind the shop's middleware with its own
// authenticator.
type userShop struct {
	*moduletest.Module
	module *user.Module
	API    *testkit.API
}

// startUser builds the user module on a database of its own and serves it.
func startUser(t *testing.T) *userShop {
	t.Helper()
	files, err := migrations.For(user.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := moduletest.New(t, testkit.ModuleSpec{Name: user.Name, Schema: user.Schema, Migrations: files}, user.RegisterEvents)
	// The shop's defaults (app/config.go).
	cfg := user.Config{
		SessionTTL:       24 * time.Hour,
		Throttle:         user.ThrottleConfig{PerAccountBurst: 5, PerClientBurst: 30, Window: 15 * time.Minute},
		RegisterThrottle: user.RegisterThrottleConfig{PerClientBurst: 10, Window: time.Hour},
		PasswordHashes:   user.HashConfig{Wait: 3 * time.Second},
		Metrics:          m.Metrics.Registry,
	}
	mod := user.New(user.Deps{DB: m.DB, Bus: m.Bus, Log: testkit.Logger(), Config: cfg})
	m.Start(t)
	srv := m.ServeConfig(t, moduletest.ServerConfig{
		Routes:        []func(*gin.RouterGroup){mod.Routes},
		OpenAPI:       [][]byte{user.Definition(cfg).OpenAPI},
		Authenticator: mod.Authenticator(),
	})
	return &userShop{Module: m, module: mod, API: srv.API}
}

var seq atomic.Int64

// unique returns a name no other call in this process returns.
func unique(prefix string) string {
	return fmt.Sprintf("%s%d_%d", prefix, os.Getpid()%10000, seq.Add(1))
}

// Admin creates an admin (as `modshop users create --admin` does) and
// logs in; it returns the user id and a session token.
func (s *userShop) Admin(t *testing.T) (id, token string) {
	t.Helper()
	const password = "correct horse battery"
	name := unique("admin")
	u, err := s.module.CreateUser(context.Background(), name, name+"@example.com", password, true)
	if err != nil {
		t.Fatalf("create admin %s: %v", name, err)
	}
	return u.ID, s.Login(t, name, password)
}

// Login logs in and returns the session token.
func (s *userShop) Login(t *testing.T, login, password string) string {
	t.Helper()
	resp := s.API.Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
	if resp.Status != http.StatusCreated {
		t.Fatalf("log in %s: %d %s", login, resp.Status, resp.Body)
	}
	var out struct{ Token string }
	resp.Decode(t, &out)
	return out.Token
}
