package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpstack"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
)

// Shop is a built, migrated modshop ready to serve HTTP.
type Shop struct {
	stack   *stack
	handler http.Handler
	doc     *openapi3.T
	stop    context.CancelFunc
	done    sync.WaitGroup
	// readiness is what /readyz found last; ready runs its checks at most
	// about once a second.
	readiness readiness
	ready     *recentProbe[error]
}

// DefaultConfig is the configuration with every default and no
// environment: what tests start from.
func DefaultConfig() Config {
	c, err := parseConfig(Env{Lookup: func(string) (string, bool) { return "", false }}, "defaults", nil, nil)
	if err != nil {
		panic(err)
	}
	return c
}

// Open builds a shop of every module (Modules): database, schemas,
// migrations, modules and routes.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Shop, error) {
	return OpenModules(ctx, cfg, Modules(cfg), log)
}

// OpenModules builds a shop of the modules mods, as Open builds the shop
// of Modules: a test adds a module of its own to the list this way, which
// the shop's own list does not know.
func OpenModules(ctx context.Context, cfg Config, mods []Module, log *slog.Logger) (*Shop, error) {
	if err := cfg.validateServe(mods); err != nil {
		return nil, err
	}
	st, err := openStack(ctx, cfg, mods, log)
	if err != nil {
		return nil, err
	}
	shop := &Shop{stack: st}
	shop.ready = newRecentProbe(func(ctx context.Context) error {
		err := st.ready(ctx)
		shop.readiness.observe(st.log, err)
		return err
	})
	if err := shop.buildHandler(); err != nil {
		st.abandon(ctx)
		return nil, err
	}
	// The bus runs before HTTP serves, and stops (in Close) after HTTP drained.
	if err := st.bus.Start(ctx); err != nil {
		st.abandon(ctx)
		return nil, fmt.Errorf("start the bus: %w", err)
	}
	if cfg.SeedDemo {
		if err := shop.seedIfEmpty(ctx, log); err != nil {
			st.abandon(ctx)
			return nil, err
		}
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	shop.stop = stop
	for _, run := range st.runners {
		shop.done.Add(1)
		go func() {
			defer shop.done.Done()
			run(bg)
		}()
	}
	return shop, nil
}

// Handler serves the whole shop.
func (s *Shop) Handler() http.Handler { return s.handler }

// OpenAPI returns the document served at /api/openapi.json.
func (s *Shop) OpenAPI() *openapi3.T { return s.doc }

// CreateUser makes an account directly, as `modshop users create` does.
func (s *Shop) CreateUser(ctx context.Context, username, email, password string, admin bool) (string, error) {
	users := s.stack.userModule()
	if users == nil {
		return "", errors.New("the user module does not run in this process")
	}
	u, err := users.CreateUser(ctx, username, email, password, admin)
	return u.ID, err
}

// Publish publishes events as the operator, in a transaction of their own:
// for tools and tests that play a module which is not running here.
func (s *Shop) Publish(ctx context.Context, events ...bus.Event) error {
	g, err := db.Gorm(s.stack.admin)
	if err != nil {
		return err
	}
	return g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return s.stack.bus.Publish(ctx, tx, events...)
	})
}

// BusOverview reports each topic's and handler's progress.
func (s *Shop) BusOverview(ctx context.Context) ([]bus.TopicStats, error) {
	return s.stack.bus.Overview(ctx)
}

// Close stops background work and the bus, then releases the database
// (and stops the embedded one).
func (s *Shop) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
	}
	s.done.Wait()
	return s.stack.close(ctx)
}

// seedIfEmpty loads the demo catalog into an empty shop.
func (s *Shop) seedIfEmpty(ctx context.Context, log *slog.Logger) error {
	products := s.stack.productModule()
	if products == nil {
		log.Info("demo catalog not loaded: the product module does not run in this process")
		return nil
	}
	empty, err := products.CatalogEmpty(ctx)
	if err != nil || !empty {
		return err
	}
	res, err := products.SeedDemo(ctx)
	if err != nil {
		return fmt.Errorf("seed the demo catalog: %w", err)
	}
	log.Info("demo catalog loaded", "categories", res.Categories, "products", res.Products)
	return nil
}

func (s *Shop) buildHandler() error {
	cfg, log := s.stack.cfg, s.stack.log
	doc, docJSON, err := openAPIDocument(s.stack.local)
	if err != nil {
		return err
	}
	s.doc = doc

	var proxies []string
	if cfg.TrustedProxies != "" {
		proxies = strings.Split(cfg.TrustedProxies, ",")
	}
	metrics := s.stack.metrics
	limit, why := inFlightBound(cfg.MaxRequestsInFlight, cfg.MaxBodyBytes)
	bound := httpx.NewInFlight(limit, int64(cfg.MaxBodyBytes), probePaths...)
	if err := bound.Register(metrics.Registry); err != nil {
		return err
	}
	log.Info("requests in flight bounded", "limit", limit, "sized", why)
	r, err := httpstack.New(httpstack.Config{
		Service:        serviceName(cfg.Modules, s.stack.all),
		Log:            log,
		Metrics:        metrics,
		InFlight:       bound,
		CORSOrigins:    cfg.corsOrigins(),
		TrustedProxies: proxies,
		Authenticator:  s.stack.authenticator,
	})
	if err != nil {
		return err
	}
	r.NoRoute(s.notFound)

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", metrics.Handler())
	r.GET("/api/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", docJSON) })

	api := r.Group("/api/v1")
	for _, m := range s.stack.local {
		s.stack.built[m.Name].Routes(api)
	}
	s.stack.bus.Routes(api)
	s.handler = r
	return nil
}

// serviceName is the name a process running the modules spec names (of
// mods) gives itself in its traces: "modshop" when it runs them all,
// otherwise "modshop-" and their names in the order spec gives them
// ("modshop-order+payment"); OTEL_SERVICE_NAME overrides it.
func serviceName(spec string, mods []Module) string {
	if strings.TrimSpace(spec) == "all" {
		return telemetry.ServiceName(nil, true)
	}
	var names []string
	for _, name := range strings.Split(spec, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return telemetry.ServiceName(names, len(names) >= len(mods))
}

// readyz tells anyone whether the shop is ready, and nothing more: why it
// is not (which names the database's user, host and port) goes to the log,
// once each time readiness changes rather than once per probe. The checks
// run at most about once a second, however many ask.
func (s *Shop) readyz(c *gin.Context) {
	notReady, err := s.ready.result(c.Request.Context())
	if err != nil || notReady != nil {
		httpx.WriteProblem(c, httpx.NewProblem(http.StatusServiceUnavailable, "not-ready", notReadyDetail(notReady)))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": s.readyChecks()})
}

// readiness remembers whether the last probe found the shop ready, so that
// only a change is logged. A shop starts ready: Open checked everything.
type readiness struct {
	mu       sync.Mutex
	notReady bool
}

func (r *readiness) observe(log *slog.Logger, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && !r.notReady:
		log.Warn("not ready", "err", err)
	case err == nil && r.notReady:
		log.Info("ready again")
	}
	r.notReady = err != nil
}

// notFound serves the web UI (serveWebUI): every process does, so that a
// reverse proxy may send the browser's pages to any of them.
func (s *Shop) notFound(c *gin.Context) { serveWebUI(c) }
