package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/payment"
	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/pgembed"
)

// module is what the composition root needs from every module.
type module interface {
	Name() string
	Schema() string
	OpenAPI() []byte
	Routes(api *gin.RouterGroup)
}

// moduleSchemas lists every module's name and schema, in start order.
var moduleSchemas = []struct{ name, schema string }{
	{user.Name, user.Schema},
	{product.Name, product.Schema},
	{order.Name, order.Schema},
	{payment.Name, payment.Schema},
}

// stack is the running platform: the database (embedded or not), one pool
// per module acting as the module's role, and the modules built on them.
type stack struct {
	cfg      Config
	log      *slog.Logger
	embedded *pgembed.Server
	admin    *sql.DB
	pools    map[string]*sql.DB // by schema
	metrics  *httpx.Metrics
	bus      *bus.Bus
	user     *user.Module
	product  *product.Module
	order    *order.Module
	payment  *payment.Module
	modules  []module
	// runners do a module's background work for as long as the shop runs.
	runners []func(ctx context.Context)
}

// openStack connects (starting the embedded PostgreSQL when no URL is
// set), provisions each module's schema and role, applies migrations and
// builds the modules.
func openStack(ctx context.Context, cfg Config, log *slog.Logger) (_ *stack, err error) {
	s := &stack{cfg: cfg, log: log, pools: map[string]*sql.DB{}}
	defer func() {
		if err != nil {
			s.close(context.WithoutCancel(ctx))
		}
	}()

	url := cfg.DatabaseURL
	if url == "" {
		start := time.Now()
		srv, err := pgembed.Start(ctx, pgembed.Config{
			Dir:    filepath.Join(cfg.DataDir, "postgres"),
			Port:   uint32(cfg.EmbeddedPort),
			Logger: log,
		})
		if err != nil {
			return nil, fmt.Errorf("start the embedded PostgreSQL: %w\n"+
				"To use an existing PostgreSQL instead, set MODSHOP_DATABASE_URL (or --database-url), "+
				"for example postgres://postgres@127.0.0.1:5432/modshop?sslmode=disable", err)
		}
		s.embedded = srv
		url = srv.URL()
		log.Debug("embedded PostgreSQL started", "took", time.Since(start).Round(time.Millisecond))
	}

	if s.admin, err = db.Open(ctx, url, 2); err != nil {
		return nil, err
	}
	for _, m := range moduleSchemas {
		if err := db.Provision(ctx, s.admin, m.schema); err != nil {
			return nil, err
		}
		pool, err := db.OpenModule(ctx, url, m.schema, int32(cfg.DBMaxConns))
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", m.name, err)
		}
		s.pools[m.schema] = pool
		files, err := migrations.For(m.name)
		if err != nil {
			return nil, fmt.Errorf("migrations of module %s: %w", m.name, err)
		}
		if err := db.Migrate(ctx, pool, m.schema, files, log); err != nil {
			return nil, err
		}
	}

	schemas := make([]string, 0, len(moduleSchemas))
	for _, m := range moduleSchemas {
		schemas = append(schemas, m.schema)
	}
	if err := bus.Provision(ctx, s.admin, schemas...); err != nil {
		return nil, err
	}
	s.metrics = httpx.NewMetrics()
	registry := bus.NewRegistry()
	user.RegisterEvents(registry)
	product.RegisterEvents(registry)
	order.RegisterEvents(registry)
	payment.RegisterEvents(registry)
	s.bus, err = bus.New(ctx, bus.Config{
		DatabaseURL: url,
		MaxAttempts: cfg.BusMaxAttempts,
		SafetyPoll:  cfg.BusSafetyPoll,
		Log:         log,
		Metrics:     s.metrics.Registry,
	}, registry)
	if err != nil {
		return nil, err
	}

	userDB, err := db.Gorm(s.pools[user.Schema])
	if err != nil {
		return nil, err
	}
	s.user = user.New(user.Deps{DB: userDB, Bus: s.bus, Log: log, Config: user.Config{
		SessionTTL:    cfg.SessionTTL,
		SecureCookies: cfg.SecureCookies,
		Throttle: user.ThrottleConfig{
			PerAccountBurst: cfg.LoginPerAccount,
			PerClientBurst:  cfg.LoginPerClient,
			Window:          cfg.LoginWindow,
		},
	}})
	productDB, err := db.Gorm(s.pools[product.Schema])
	if err != nil {
		return nil, err
	}
	s.product = product.New(product.Deps{DB: productDB, Bus: s.bus, Log: log, Config: product.Config{
		ReservationTTL: cfg.ReservationTTL,
	}})
	orderDB, err := db.Gorm(s.pools[order.Schema])
	if err != nil {
		return nil, err
	}
	s.order = order.New(order.Deps{DB: orderDB, Bus: s.bus, Log: log, Config: order.Config{
		StockTimeout:   cfg.StockTimeout,
		PaymentTimeout: cfg.PaymentTimeout,
	}})
	paymentDB, err := db.Gorm(s.pools[payment.Schema])
	if err != nil {
		return nil, err
	}
	s.payment = payment.New(payment.Deps{DB: paymentDB, Bus: s.bus, Log: log, Config: payment.Config{
		TestDelay: cfg.PaymentTestDelay,
	}})
	s.modules = []module{s.user, s.product, s.order, s.payment}
	s.runners = []func(context.Context){s.product.Run, s.order.Run, s.payment.Run}
	return s, nil
}

// ready reports whether every module's database answers and has all its
// migrations.
func (s *stack) ready(ctx context.Context) error {
	for _, m := range moduleSchemas {
		pool := s.pools[m.schema]
		if err := pool.PingContext(ctx); err != nil {
			return fmt.Errorf("database of module %s: %w", m.name, err)
		}
		files, err := migrations.For(m.name)
		if err != nil {
			return err
		}
		pending, err := db.Pending(ctx, pool, m.schema, files)
		if err != nil {
			return err
		}
		if pending {
			return fmt.Errorf("module %s has migrations not applied", m.name)
		}
	}
	return nil
}

// close stops the bus (handlers in flight finish or roll back), releases
// pools and stops the embedded PostgreSQL, in that order.
func (s *stack) close(ctx context.Context) error {
	var errs []error
	if s.bus != nil {
		errs = append(errs, s.bus.Close())
	}
	for _, p := range s.pools {
		errs = append(errs, p.Close())
	}
	if s.admin != nil {
		errs = append(errs, s.admin.Close())
	}
	if s.embedded != nil {
		stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.embedded.Stop(stopCtx); err != nil {
			errs = append(errs, fmt.Errorf("stop embedded PostgreSQL: %w", err))
		}
	}
	return errors.Join(errs...)
}
