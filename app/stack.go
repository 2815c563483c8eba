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
	"github.com/modshop/modshop/platform/auth"
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

// The modules' names, as MODSHOP_MODULES spells them.
const (
	userModule    = user.Name
	productModule = product.Name
	orderModule   = order.Name
	paymentModule = payment.Name
)

// moduleSchemas lists every module's name and schema, in start order.
var moduleSchemas = []struct{ name, schema string }{
	{user.Name, user.Schema},
	{product.Name, product.Schema},
	{order.Name, order.Schema},
	{payment.Name, payment.Schema},
}

// moduleNames lists every module, in start order.
func moduleNames() []string {
	out := make([]string, len(moduleSchemas))
	for i, m := range moduleSchemas {
		out[i] = m.name
	}
	return out
}

// stack is the running platform: the database (embedded or not), one pool
// per module of this process acting as the module's role, and the modules
// built on them. Modules this process does not run are nil.
type stack struct {
	cfg      Config
	log      *slog.Logger
	embedded *pgembed.Server
	admin    *sql.DB            // on the bus's database
	pools    map[string]*sql.DB // by schema, this process's modules only
	metrics  *httpx.Metrics
	bus      *bus.Bus
	user     *user.Module
	product  *product.Module
	order    *order.Module
	payment  *payment.Module
	modules  []module
	// local lists the modules this process runs, with their schemas.
	local []struct{ name, schema string }
	// authenticator checks session tokens: the user module's own when it
	// runs here, otherwise one that asks the user module over HTTP.
	authenticator auth.Authenticator
	// runners do a module's background work for as long as the shop runs.
	runners []func(ctx context.Context)
}

// openStack connects (starting the embedded PostgreSQL when no URL is
// set), provisions each of this process's modules' schema and role,
// applies their migrations and builds them. Only the modules in
// cfg.Modules are built, so only their handlers subscribe and only their
// background work runs.
func openStack(ctx context.Context, cfg Config, log *slog.Logger) (_ *stack, err error) {
	s := &stack{cfg: cfg, log: log, pools: map[string]*sql.DB{}}
	defer func() {
		if err != nil {
			s.abandon(ctx)
		}
	}()
	for _, m := range moduleSchemas {
		if cfg.runs(m.name) {
			s.local = append(s.local, m)
		}
	}

	url := cfg.DatabaseURL
	if url == "" {
		start := time.Now()
		srv, err := pgembed.Start(ctx, pgembed.Config{
			Dir:    filepath.Join(cfg.DataDir, "postgres"),
			Port:   uint32(cfg.EmbeddedPort), // #nosec G115 -- validate keeps it from 1 to 65535
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

	// The bus's tables live in the shared database; with the rabbitmq
	// transport they are this process's outbox, in its modules' database.
	busURL := url
	if cfg.BusTransport == bus.TransportRabbitMQ && len(s.local) > 0 {
		if own := cfg.moduleDatabaseURL(s.local[0].name); own != "" {
			busURL = own
		}
	}
	if s.admin, err = openCreatingDatabase(ctx, busURL, 2, log); err != nil {
		return nil, err
	}
	unlock, err := lockProvisioning(ctx, s.admin)
	if err != nil {
		return nil, err
	}
	defer unlock()
	admins, err := s.moduleAdmins(ctx)
	for _, a := range admins {
		defer a.Close()
	}
	if err != nil {
		return nil, err
	}
	for _, m := range s.local {
		if err := s.openModuleDatabase(ctx, m.name, m.schema, url, admins[m.name]); err != nil {
			return nil, err
		}
	}

	schemas := make([]string, 0, len(s.local))
	for _, m := range s.local {
		schemas = append(schemas, m.schema)
	}
	if err := bus.Provision(ctx, s.admin, schemas...); err != nil {
		return nil, err
	}
	s.metrics = httpx.NewMetrics()
	// Every process knows every event, so that it can publish any of them
	// and report every topic; only its own modules handle them.
	registry := bus.NewRegistry()
	user.RegisterEvents(registry)
	product.RegisterEvents(registry)
	order.RegisterEvents(registry)
	payment.RegisterEvents(registry)
	s.bus, err = bus.New(ctx, bus.Config{
		DatabaseURL:   busURL,
		Transport:     cfg.BusTransport,
		AMQPURL:       cfg.AMQPURL,
		AMQPNamespace: cfg.AMQPNamespace,
		MaxAttempts:   cfg.BusMaxAttempts,
		SafetyPoll:    cfg.BusSafetyPoll,
		Retention:     cfg.BusRetention,
		GroupExpiry:   cfg.BusGroupExpiry,
		Log:           log,
		Metrics:       s.metrics.Registry,
	}, registry)
	if err != nil {
		return nil, err
	}
	if err := s.buildModules(); err != nil {
		return nil, err
	}
	return s, nil
}

// lockProvisioning makes processes that start together on one database
// provision, migrate and create the bus tables one after the other: two
// concurrent CREATE TABLE IF NOT EXISTS of one table can fail (42P07) where
// one after the other cannot. It holds a session advisory lock on one of
// admin's connections until unlock.
func lockProvisioning(ctx context.Context, admin *sql.DB) (unlock func(), err error) {
	conn, err := admin.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("provisioning lock: %w", err)
	}
	const key = `hashtextextended('modshop:provision', 0)`
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("provisioning lock: %w", err)
	}
	return func() {
		// Closing the connection would release the lock too, but the pool
		// keeps it open: unlock explicitly.
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(`+key+`)`)
		_ = conn.Close()
	}, nil
}

// moduleAdmins connects to the database of each of this process's modules
// that has its own URL, before anything is provisioned. With the
// PostgreSQL bus transport a module must share the bus's database: it
// writes its events into the bus tables in its own transactions.
func (s *stack) moduleAdmins(ctx context.Context) (map[string]*sql.DB, error) {
	admins := map[string]*sql.DB{}
	for _, m := range s.local {
		own := s.cfg.moduleDatabaseURL(m.name)
		if own == "" {
			continue
		}
		admin, err := openCreatingDatabase(ctx, own, 2, s.log)
		if err != nil {
			return admins, fmt.Errorf("module %s (%s): %w", m.name, moduleDatabaseEnv(m.name), err)
		}
		admins[m.name] = admin
		same, err := sameDatabase(ctx, admin, s.admin)
		if err != nil {
			return admins, fmt.Errorf("module %s: %w", m.name, err)
		}
		if !same && s.cfg.BusTransport == bus.TransportRabbitMQ {
			return admins, fmt.Errorf("module %s: %s points at another database than this process's other modules; "+
				"with MODSHOP_BUS_TRANSPORT=rabbitmq a process keeps one outbox, in its modules' database: "+
				"run modules on different databases in processes of their own (--modules)",
				m.name, moduleDatabaseEnv(m.name))
		}
		if !same {
			return admins, fmt.Errorf("module %s: %s points at another database than the bus (MODSHOP_DATABASE_URL), "+
				"but with MODSHOP_BUS_TRANSPORT=%s every module writes its events into the bus tables in its own "+
				"transactions, so all must share the bus's database; a database per module needs MODSHOP_BUS_TRANSPORT=rabbitmq "+
				"(and one process per database): point %s at the bus's database, or leave it empty",
				m.name, moduleDatabaseEnv(m.name), s.cfg.BusTransport, moduleDatabaseEnv(m.name))
		}
	}
	return admins, nil
}

// openModuleDatabase provisions a module's schema and role on its database
// (admin, connected by its own URL; nil: the shared one), opens its pool
// and migrates it.
func (s *stack) openModuleDatabase(ctx context.Context, name, schema, sharedURL string, admin *sql.DB) error {
	url := sharedURL
	if admin == nil {
		admin = s.admin
	} else {
		url = s.cfg.moduleDatabaseURL(name)
	}
	if err := db.Provision(ctx, admin, schema); err != nil {
		return err
	}
	if err := s.migrate(ctx, name, schema, url); err != nil {
		return err
	}
	// The module's pool serves its HTTP requests, bounded by the statement
	// timeout; its bus handlers lift it in their own transactions.
	pool, err := db.OpenModule(ctx, url, schema, s.cfg.DBMaxConns, db.StatementTimeout(s.cfg.StatementTimeout))
	if err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	s.pools[schema] = pool
	return nil
}

// migrate applies a module's migrations as its role, on connections of
// their own: not bounded by the statement timeout, which is for requests
// (a migration may take as long as the operator's data needs).
func (s *stack) migrate(ctx context.Context, name, schema, url string) error {
	files, err := migrations.For(name)
	if err != nil {
		return fmt.Errorf("migrations of module %s: %w", name, err)
	}
	pool, err := db.OpenModule(ctx, url, schema, 2) // the migration lock's connection, and the migrations'
	if err != nil {
		return fmt.Errorf("module %s: %w", name, err)
	}
	defer pool.Close()
	return db.Migrate(ctx, pool, schema, files, s.log)
}

// databaseIdentity names the database a connection reaches, whatever
// address or user it came by: two URLs may name one database differently
// (localhost and 127.0.0.1, two users), and two databases on two servers
// may share a name. The postmaster's start time tells servers apart.
const databaseIdentity = `SELECT current_database() || ' ' ||
	(SELECT oid FROM pg_database WHERE datname = current_database())::text || ' ' ||
	pg_postmaster_start_time()::text`

// sameDatabase reports whether a and b are connected to one database.
func sameDatabase(ctx context.Context, a, b *sql.DB) (bool, error) {
	var ida, idb string
	if err := a.QueryRowContext(ctx, databaseIdentity).Scan(&ida); err != nil {
		return false, fmt.Errorf("identify the database: %w", err)
	}
	if err := b.QueryRowContext(ctx, databaseIdentity).Scan(&idb); err != nil {
		return false, fmt.Errorf("identify the bus's database: %w", err)
	}
	return ida == idb, nil
}

// buildModules builds this process's modules on their pools. Building a
// module subscribes its handlers to the bus.
func (s *stack) buildModules() error {
	cfg, log := s.cfg, s.log
	if pool, ok := s.pools[user.Schema]; ok {
		userDB, err := db.Gorm(pool)
		if err != nil {
			return err
		}
		s.user = user.New(user.Deps{DB: userDB, Bus: s.bus, Log: log, Config: user.Config{
			SessionTTL:    cfg.SessionTTL,
			SecureCookies: cfg.SecureCookies,
			Throttle: user.ThrottleConfig{
				PerAccountBurst: cfg.LoginPerAccount,
				PerClientBurst:  cfg.LoginPerClient,
				Window:          cfg.LoginWindow,
			},
			RegisterThrottle: user.RegisterThrottleConfig{PerClientBurst: cfg.RegisterPerClient, Window: cfg.RegisterWindow},
			PasswordHashes:   user.HashConfig{Slots: cfg.PasswordHashes, Wait: cfg.PasswordHashWait},
			Metrics:          s.metrics.Registry,
		}})
		s.modules = append(s.modules, s.user)
		s.authenticator = s.user.Authenticator()
	} else {
		s.authenticator = user.RemoteAuthenticator(cfg.UserURL, log)
	}
	if pool, ok := s.pools[product.Schema]; ok {
		productDB, err := db.Gorm(pool)
		if err != nil {
			return err
		}
		s.product = product.New(product.Deps{DB: productDB, Bus: s.bus, Log: log, Config: product.Config{
			ReservationTTL: cfg.ReservationTTL,
		}})
		s.modules = append(s.modules, s.product)
		s.runners = append(s.runners, s.product.Run)
	}
	if pool, ok := s.pools[order.Schema]; ok {
		orderDB, err := db.Gorm(pool)
		if err != nil {
			return err
		}
		s.order = order.New(order.Deps{DB: orderDB, Bus: s.bus, Log: log, Config: order.Config{
			StockTimeout:   cfg.StockTimeout,
			PaymentTimeout: cfg.PaymentTimeout,
		}})
		s.modules = append(s.modules, s.order)
		s.runners = append(s.runners, s.order.Run)
	}
	if pool, ok := s.pools[payment.Schema]; ok {
		paymentDB, err := db.Gorm(pool)
		if err != nil {
			return err
		}
		s.payment = payment.New(payment.Deps{DB: paymentDB, Bus: s.bus, Log: log, Config: payment.Config{
			TestDelay:       cfg.PaymentTestDelay,
			ProviderTimeout: cfg.PaymentProviderTimeout,
		}})
		s.modules = append(s.modules, s.payment)
		s.runners = append(s.runners, s.payment.Run)
	}
	return nil
}

// ready reports whether every database of this process's modules answers
// and has all its migrations.
func (s *stack) ready(ctx context.Context) error {
	for _, m := range s.local {
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
// pools and leaves the embedded PostgreSQL, in that order: it stops only
// when no other modshop process uses it (the shop while a CLI command
// ends, another serve on the same data directory).
// abandon closes a stack that could not be opened or started. The caller
// returns the failure that led here; a failure to close (an embedded
// PostgreSQL that would not stop) goes to the log. It closes even when ctx
// has ended (Ctrl-C during the start): the embedded PostgreSQL is stopped
// all the same.
func (s *stack) abandon(ctx context.Context) {
	if err := s.close(context.WithoutCancel(ctx)); err != nil {
		s.log.Error("close after a failed start", "err", err)
	}
}

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
