package app_test

import (
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/module"
	"github.com/modshop/modshop/platform/testkit"
)

// The memo module exists only here: a module added the way
// docs/adding-a-module.md says, with a schema, one migration (from
// testdata, where a real module's come from migrations/memo), one route
// and one handler. The shop's own list (app.Modules) does not know it: the
// test hands app.OpenModules the list with the memo module added.

//go:embed testdata/memo/*.sql
var memoFiles embed.FS

// memoRequested is the event the memo module handles (a real module's
// events live in its events package).
type memoRequested struct {
	Text string `json:"text"`
}

func (memoRequested) EventName() string { return "memo.requested.v1" }

// memoHandlerOnRequested is the memo module's one handler: a durable
// consumer-group id, named <module>.on_<event>.
const memoHandlerOnRequested = "memo.on_requested"

var memoOpenAPI = []byte(`
paths:
  /api/v1/memos:
    get:
      summary: The memos recorded, oldest first
      operationId: listMemos
      tags: [memos]
      responses:
        "200":
          description: The memos
          content:
            application/json:
              schema:
                type: object
                additionalProperties: false
                required: [items]
                properties:
                  items: { type: array, items: { type: string } }
`)

// memoDefinition is the memo module's definition, as a module's root file
// exports it.
func memoDefinition() module.Definition {
	return module.Definition{
		Name:           "memo",
		Schema:         "memos",
		OpenAPI:        memoOpenAPI,
		Paths:          []string{"/api/v1/memos"},
		Handlers:       []string{memoHandlerOnRequested},
		RegisterEvents: func(r *bus.Registry) { r.Register(memoRequested{}) },
		New: func(d module.Deps) (module.Instance, error) {
			consumer := bus.Consumer{Module: "memo", DB: d.DB}
			bus.Handle(d.Bus, memoHandlerOnRequested, consumer, func(ctx context.Context, tx *gorm.DB, ev memoRequested) error {
				return tx.WithContext(ctx).Exec(`INSERT INTO memos (text) VALUES (?)`, ev.Text).Error
			})
			return memoModule{db: d.DB}, nil
		},
	}
}

type memoModule struct{ db *gorm.DB }

func (m memoModule) Routes(api *gin.RouterGroup) {
	api.GET("/memos", func(c *gin.Context) {
		items := []string{}
		if err := m.db.WithContext(c.Request.Context()).Raw(`SELECT text FROM memos ORDER BY id`).Scan(&items).Error; err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"items": items})
	})
}

// TestModules_AModuleAddedToTheListIsProvisionedMigratedServedAndFed wires
// the memo module through the list beside the user module: the shop
// provisions its schema and role, applies its migration, serves its route
// (described in the OpenAPI document) and runs its handler on an event
// published on the bus, against the real PostgreSQL.
func TestModules_AModuleAddedToTheListIsProvisionedMigratedServedAndFed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	migrations, err := fs.Sub(memoFiles, "testdata/memo")
	if err != nil {
		t.Fatal(err)
	}
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = testkit.NewDatabase(t)
	cfg.DBMaxConns = 4
	cfg.Modules = "user,memo" // MODSHOP_MODULES knows the modules of the list it is given
	mods := append(app.Modules(cfg), app.Module{Definition: memoDefinition(), Migrations: migrations})
	shop, err := app.OpenModules(ctx, cfg, mods, apptest.Logger())
	if err != nil {
		t.Fatalf("open a shop with the memo module: %v", err)
	}
	t.Cleanup(func() { _ = shop.Close(context.Background()) })
	srv := httptest.NewServer(shop.Handler())
	t.Cleanup(srv.Close)
	api := testkit.NewAPI(t, srv.URL, shop.OpenAPI())

	got := schemas(t, cfg.DatabaseURL)
	if !got["users"] || got["products"] || got["orders"] || got["payments"] {
		t.Errorf("schemas of a shop running user and memo: %v; want users and no other module's", got)
	}
	var tables int
	scanOne(t, cfg.DatabaseURL, `SELECT count(*) FROM pg_tables WHERE schemaname = 'memos' AND tablename = 'memos'`, &tables)
	var role int
	scanOne(t, cfg.DatabaseURL, `SELECT count(*) FROM pg_roles WHERE rolname = 'modshop_memos'`, &role)
	if tables != 1 || role != 1 {
		t.Fatalf("memos.memos tables: %d, role modshop_memos: %d; want the schema migrated and its role made", tables, role)
	}

	var list struct{ Items []string }
	r := api.Do("GET", "/api/v1/memos", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/v1/memos: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("memos before any event: %v, want none", list.Items)
	}

	if err := shop.Publish(ctx, memoRequested{Text: "hello from the bus"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		api.Do("GET", "/api/v1/memos", nil).Decode(t, &list)
		if slices.Equal(list.Items, []string{"hello from the bus"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memos 30s after memo.requested was published: %v; want the handler's one memo", list.Items)
		}
		time.Sleep(20 * time.Millisecond)
	}
	topics, err := shop.BusOverview(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if handlers := handlersIn(topics); !slices.Contains(handlers, memoHandlerOnRequested) {
		t.Errorf("handlers on the bus page: %v; want %s", handlers, memoHandlerOnRequested)
	}
}

// TestModules_DefinitionsNameTheHandlersTheySubscribe: the handlers a
// definition names (pinned in TestModules_HandlerNamesArePinned) are the
// ones its module subscribes when built, no more and no fewer.
func TestModules_DefinitionsNameTheHandlersTheySubscribe(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	topics, err := shop.BusOverview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, m := range app.Modules(app.DefaultConfig()) {
		named = append(named, m.Handlers...)
	}
	slices.Sort(named)
	if got := handlersIn(topics); !slices.Equal(got, named) {
		t.Errorf("handlers subscribed: %v; the definitions name %v", got, named)
	}
}

// handlersIn lists the handlers of the bus overview, sorted.
func handlersIn(topics []bus.TopicStats) []string {
	var out []string
	for _, tp := range topics {
		for _, c := range tp.Consumers {
			out = append(out, c.Handler)
		}
	}
	slices.Sort(out)
	return out
}

// scanOne scans the one row of a query as the database's superuser.
func scanOne(t *testing.T, dbURL, q string, dest ...any) {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(q).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
