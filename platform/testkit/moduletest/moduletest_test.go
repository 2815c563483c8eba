package moduletest_test

import (
	"context"
	"net/http"
	"testing"
	"testing/fstest"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A tiny module: it counts pings and answers each with a pong.
type ping struct {
	N int `json:"n"`
}

func (ping) EventName() string { return "kit.ping.v1" }

type pong struct {
	N int `json:"n"`
}

func (pong) EventName() string { return "kit.pong.v1" }

var spec = testkit.ModuleSpec{Name: "kit", Schema: "kit", Migrations: fstest.MapFS{
	"0001_pings.sql": {Data: []byte("-- +goose Up\nCREATE TABLE pings (n int PRIMARY KEY);\n")},
}}

const fragment = `
paths:
  /api/v1/whoami:
    get:
      operationId: whoami
      responses:
        "200":
          description: the caller
          content:
            application/json:
              schema:
                type: object
                required: [user_id]
                properties:
                  user_id: {type: string}
        "401": { $ref: "#/components/responses/Problem" }
        "403": { $ref: "#/components/responses/Problem" }
`

// TestModule_HandlesWhatTheTestPublishesAndRecordsWhatItPublishes: an
// event published by the test reaches the module's handler, whose effect
// is in the module's own schema, and the event the handler publishes is
// recorded.
func TestModule_HandlesWhatTheTestPublishesAndRecordsWhatItPublishes(t *testing.T) {
	t.Parallel()
	m := moduletest.New(t, spec, func(r *bus.Registry) { r.Register(ping{}, pong{}) })
	bus.Handle(m.Bus, "kit.on_ping", bus.Consumer{Module: "kit", DB: m.DB}, func(ctx context.Context, tx *gorm.DB, ev ping) error {
		if err := tx.Exec(`INSERT INTO pings (n) VALUES (?)`, ev.N).Error; err != nil {
			return err
		}
		return m.Bus.Publish(ctx, tx, pong(ev))
	})
	moduletest.Record[pong](m.Events)
	m.Start(t)

	if err := m.Publish(context.Background(), ping{N: 7}); err != nil {
		t.Fatal(err)
	}
	got := moduletest.WaitFor(t, m.Events, "pong 7", func(p pong) bool { return p.N == 7 })
	if got.N != 7 {
		t.Fatalf("recorded %+v", got)
	}
	db := testkit.OpenSQL(t, m.URL)
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM kit.pings WHERE n = 7`); n != 1 {
		t.Fatalf("pings recorded by the module: %d, want 1", n)
	}
	testkit.Eventually(t, "the recorder to hold one pong", func() bool { return len(moduletest.All[pong](m.Events)) == 1 })
}

// TestServer_AuthenticatesWithTheFakeAndRendersProblems: the module's
// routes see the caller a fake token stands for; a made-up token, a
// missing one and an unknown path are problems, as in the shop.
func TestServer_AuthenticatesWithTheFakeAndRendersProblems(t *testing.T) {
	t.Parallel()
	fake := moduletest.NewFakeAuth()
	srv := moduletest.NewServer(t, moduletest.ServerConfig{
		Routes: []func(*gin.RouterGroup){func(api *gin.RouterGroup) {
			api.GET("/whoami", auth.RequireRole(auth.RoleAdmin), func(c *gin.Context) {
				c.JSON(http.StatusOK, gin.H{"user_id": auth.MustIdentity(c).UserID})
			})
		}},
		OpenAPI:       [][]byte{[]byte(fragment)},
		Authenticator: fake,
	})
	adminID, admin := fake.Admin()
	_, customer := fake.Customer()

	var me struct {
		UserID string `json:"user_id"`
	}
	r := srv.API.Do("GET", "/api/v1/whoami", nil, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("admin: %d %s", r.Status, r.Body)
	}
	if r.Decode(t, &me); me.UserID != adminID {
		t.Errorf("admin seen as %q, want %q", me.UserID, adminID)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("no request id: the shop's middleware is not in front")
	}
	for _, c := range []struct {
		what   string
		path   string
		opts   []testkit.Option
		status int
	}{
		{"customer", "/api/v1/whoami", []testkit.Option{testkit.Bearer(customer)}, http.StatusForbidden},
		{"made-up token", "/api/v1/whoami", []testkit.Option{testkit.Bearer("nope")}, http.StatusUnauthorized},
		{"anonymous", "/api/v1/whoami", nil, http.StatusUnauthorized},
		{"unknown path", "/api/v1/nothing-here", nil, http.StatusNotFound},
	} {
		r := srv.API.Do("GET", c.path, nil, c.opts...)
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.what, r.Status, r.Body, c.status)
			continue
		}
		r.Problem(t)
	}
	fake.Revoke(admin)
	if r := srv.API.Do("GET", "/api/v1/whoami", nil, testkit.Bearer(admin)); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", r.Status)
	}
}
