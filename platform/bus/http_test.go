package bus

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/openapi"
	"github.com/modshop/modshop/platform/testkit"
)

// TestAdminAPI_InspectReplayAndDiscardDeadLetters drives the staff
// endpoints over HTTP, checking each answer against the OpenAPI document.
func TestAdminAPI_InspectReplayAndDiscardDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{MaxAttempts: 2})
	var fixed atomic.Bool
	Handle(b, "testmod.picky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if !fixed.Load() {
			return fmt.Errorf("not today: %s", ev.Key)
		}
		return record("testmod.picky")(ctx, tx, ev)
	})
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.publish(b, context.Background(), "first")
	e.publish(b, context.Background(), "second")
	e.waitFor("two dead letters", func() bool {
		d, _ := b.DeadLetters(context.Background(), false, 10)
		return len(d) == 2
	})

	doc, _, err := openapi.Build(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(httpx.Errors(slogDiscard()), func(c *gin.Context) {
		roles := []string{"customer"}
		if c.GetHeader("X-Test-Role") == "admin" {
			roles = append(roles, auth.RoleAdmin)
		}
		c.Request = c.Request.WithContext(auth.WithIdentity(c.Request.Context(), auth.Identity{UserID: "u1", Roles: roles}))
	})
	b.Routes(r.Group("/api/v1"))
	srv := httptest.NewServer(r)
	defer srv.Close()
	api := testkit.NewAPI(t, srv.URL, doc)
	admin := testkit.Header("X-Test-Role", "admin")

	if r := api.Do("GET", "/api/v1/admin/dead-letters", nil); r.Status != http.StatusForbidden {
		t.Fatalf("customer listing dead letters: %d, want 403", r.Status)
	}

	var overview struct {
		Topics []TopicStats `json:"topics"`
	}
	api.Do("GET", "/api/v1/admin/bus", nil, admin).Decode(t, &overview)
	found := false
	for _, ts := range overview.Topics {
		if ts.Topic == "test.thing_happened.v1" {
			found = true
			if ts.Published != 2 || len(ts.Consumers) != 1 || ts.Consumers[0].DeadLetters != 2 || ts.Consumers[0].Lag != 0 || ts.LastPublished == nil {
				t.Fatalf("overview of the topic = %+v", ts)
			}
		}
	}
	if !found {
		t.Fatalf("overview lacks the topic: %+v", overview)
	}

	var list struct {
		Items []DeadLetter `json:"items"`
	}
	api.Do("GET", "/api/v1/admin/dead-letters?limit=10", nil, admin).Decode(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("dead letters listed: %d, want 2", len(list.Items))
	}
	second, first := list.Items[0], list.Items[1] // newest first
	path := func(d DeadLetter) string { return fmt.Sprintf("/api/v1/admin/dead-letters/%d", d.ID) }

	var one DeadLetter
	api.Do("GET", path(first), nil, admin).Decode(t, &one)
	if one.Handler != "testmod.picky" || one.Attempts != 2 || one.Error == "" {
		t.Fatalf("dead letter = %+v", one)
	}
	if r := api.Do("POST", path(first)+"/replay", nil, admin); r.Status != http.StatusConflict {
		t.Fatalf("replay while the cause persists: %d, want 409", r.Status)
	}
	fixed.Store(true)
	for i := range 2 {
		if r := api.Do("POST", path(first)+"/replay", nil, admin); r.Status != http.StatusOK {
			t.Fatalf("replay %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if n := e.effects("first"); n != 1 {
		t.Fatalf("replayed twice, applied %d times; want 1", n)
	}
	if r := api.Do("DELETE", path(second), nil, admin); r.Status != http.StatusNoContent {
		t.Fatalf("discard: %d", r.Status)
	}
	if r := api.Do("POST", path(second)+"/replay", nil, admin); r.Status != http.StatusConflict {
		t.Fatalf("replaying a discarded letter: %d, want 409", r.Status)
	}
	if n := e.effects("second"); n != 0 {
		t.Fatalf("a discarded letter was applied %d times", n)
	}
	api.Do("GET", "/api/v1/admin/dead-letters", nil, admin).Decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("open dead letters after replay and discard: %d", len(list.Items))
	}
	api.Do("GET", "/api/v1/admin/dead-letters?state=all", nil, admin).Decode(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("all dead letters: %d, want 2", len(list.Items))
	}
	for _, p := range []string{"/api/v1/admin/dead-letters/99999", "/api/v1/admin/dead-letters/abc"} {
		if r := api.Do("GET", p, nil, admin); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, r.Status)
		}
	}
	if r := api.Do("GET", "/api/v1/admin/dead-letters?limit=0", nil, admin); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("limit=0: %d, want 422", r.Status)
	}
}
