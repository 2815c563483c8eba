package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/module"
	"github.com/modshop/modshop/platform/pgembed"
)

// stack is the running platform: the database (embedded or not), one pool
// per module of this process acting as the module's role, and the modules
// built on them. Modules this process does not run are not built.
type stack struct {
	cfg      Config
	log      *slog.Logger
	embedded *pgembed.Server
	admin    *sql.DB            // on the bus's database
	pools    map[string]*sql.DB // by schema, this process's modules only
	where    map[string]string  // by schema: the pool's database, for log lines (db.Where)
	metrics  *httpx.Metrics
	bus      *bus.Bus
	// all lists the shop's modules; local those this process runs, in
	// start order; built holds what local built, by module name.
	all   []Module
	local []Module
	built map[string]module.Instance
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
func openStack(ctx context.Context, cfg Config, mods []Module, log *slog.Logger) (_ *stack, err error) {
	local, err := selectModules(cfg.Modules, mods)
	if err != nil {
		return nil, err
	}
	s := &stack{cfg: cfg, log: log, pools: map[string]*sql.DB{}, where: map[string]string{}, all: mods, local: local, built: map[string]module.Instance{}}
	defer func() {
		if err != nil {
			s.abandon(ctx)
		}
	}()

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
		if own := cfg.moduleDatabaseURL(s.local[0].Name); own != "" {
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
		if err := s.openModuleDatabase(ctx, m, url, admins[m.Name]); err != nil {
			return nil, err
		}
	}

	schemas := make([]string, 0, len(s.local))
	for _, m := range s.local {
		schemas = append(schemas, m.Schema)
	}
	if err := bus.Provision(ctx, s.admin, schemas...); err != nil {
		return nil, err
	}
	s.metrics = httpx.NewMetrics()
	// Every process knows every event, so that it can publish any of them
	// and report every topic; only its own modules handle them.
	registry := bus.NewRegistry()
	for _, m := range s.all {
		if m.RegisterEvents != nil {
			m.RegisterEvents(registry)
		}
	}
	s.bus, err = bus.New(ctx, bus.Config{
		Process:       s.processName(),
		Publishes:     s.publishedEvents(),
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
		// Handlers applied in the bus's batches run on its pool.
		NoStatementSpans: !cfg.TraceStatements,
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
		own := s.cfg.moduleDatabaseURL(m.Name)
		if own == "" {
			continue
		}
		admin, err := openCreatingDatabase(ctx, own, 2, s.log)
		if err != nil {
			return admins, fmt.Errorf("module %s (%s): %w", m.Name, moduleDatabaseEnv(m.Name), err)
		}
		admins[m.Name] = admin
		same, err := sameDatabase(ctx, admin, s.admin)
		if err != nil {
			return admins, fmt.Errorf("module %s: %w", m.Name, err)
		}
		if !same && s.cfg.BusTransport == bus.TransportRabbitMQ {
			return admins, fmt.Errorf("module %s: %s points at another database than this process's other modules; "+
				"with MODSHOP_BUS_TRANSPORT=rabbitmq a process keeps one outbox, in its modules' database: "+
				"run modules on different databases in processes of their own (--modules)",
				m.Name, moduleDatabaseEnv(m.Name))
		}
		if !same {
			return admins, fmt.Errorf("module %s: %s points at another database than the bus (MODSHOP_DATABASE_URL), "+
				"but with MODSHOP_BUS_TRANSPORT=%s every module writes its events into the bus tables in its own "+
				"transactions, so all must share the bus's database; a database per module needs MODSHOP_BUS_TRANSPORT=rabbitmq "+
				"(and one process per database): point %s at the bus's database, or leave it empty",
				m.Name, moduleDatabaseEnv(m.Name), s.cfg.BusTransport, moduleDatabaseEnv(m.Name))
		}
	}
	return admins, nil
}

// openModuleDatabase provisions a module's schema and role on its database
// (admin, connected by its own URL; nil: the shared one), opens its pool
// and migrates it.
func (s *stack) openModuleDatabase(ctx context.Context, m Module, sharedURL string, admin *sql.DB) error {
	url := sharedURL
	if admin == nil {
		admin = s.admin
	} else {
		url = s.cfg.moduleDatabaseURL(m.Name)
	}
	if err := db.Provision(ctx, admin, m.Schema); err != nil {
		return err
	}
	if err := s.migrate(ctx, m, url); err != nil {
		return err
	}
	// The module's pool serves its HTTP requests, bounded by the statement
	// timeout; its bus handlers lift it in their own transactions.
	pool, err := db.OpenModule(ctx, url, m.Schema, s.cfg.DBMaxConns,
		db.StatementTimeout(s.cfg.StatementTimeout), db.TraceStatements(s.cfg.TraceStatements))
	if err != nil {
		return fmt.Errorf("module %s: %w", m.Name, err)
	}
	s.pools[m.Schema] = pool
	s.where[m.Schema] = db.Where(url)
	return nil
}

// migrate applies a module's migrations as its role, on connections of
// their own: not bounded by the statement timeout, which is for requests
// (a migration may take as long as the operator's data needs).
func (s *stack) migrate(ctx context.Context, m Module, url string) error {
	pool, err := db.OpenModule(ctx, url, m.Schema, 2) // the migration lock's connection, and the migrations'
	if err != nil {
		return fmt.Errorf("module %s: %w", m.Name, err)
	}
	defer pool.Close()
	return db.Migrate(ctx, pool, m.Schema, m.Migrations, s.log)
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

// buildModules builds this process's modules on their pools, in start
// order. Building a module subscribes its handlers to the bus. Session
// tokens are checked by the module that owns sessions: its own
// authenticator when it runs here, otherwise its remote one.
func (s *stack) buildModules() error {
	for _, m := range s.local {
		g, err := db.Gorm(s.pools[m.Schema])
		if err != nil {
			return err
		}
		inst, err := m.New(module.Deps{DB: g, Bus: s.bus, Log: s.log, Metrics: s.metrics.Registry})
		if err != nil {
			return fmt.Errorf("build module %s: %w", m.Name, err)
		}
		s.built[m.Name] = inst
		if r, ok := inst.(module.Runner); ok {
			s.runners = append(s.runners, r.Run)
		}
		if a, ok := inst.(module.Authenticating); ok && m.RemoteAuthenticator != nil {
			s.authenticator = a.Authenticator()
		}
	}
	for _, m := range s.all {
		if m.RemoteAuthenticator != nil && s.authenticator == nil {
			s.authenticator = m.RemoteAuthenticator(s.cfg.UserURL, s.log)
		}
	}
	if s.authenticator == nil {
		return errors.New("no module checks session tokens")
	}
	return nil
}

// userModule is the user module when it runs in this process, for the
// commands that act on accounts; nil otherwise.
func (s *stack) userModule() *user.Module {
	m, _ := s.built[user.Name].(*user.Module)
	return m
}

// productModule is the product module when it runs in this process, for
// the demo catalog; nil otherwise.
func (s *stack) productModule() *product.Module {
	m, _ := s.built[product.Name].(*product.Module)
	return m
}

// ready reports whether every database of this process's modules answers
// and has all its migrations.
func (s *stack) ready(ctx context.Context) error {
	for _, m := range s.local {
		pool := s.pools[m.Schema]
		if err := pool.PingContext(ctx); err != nil {
			// The address goes to the log only (/readyz says ready or not):
			// a broken pooled connection's error names nothing of it.
			return fmt.Errorf("database of module %s (%s): %w", m.Name, s.where[m.Schema], err)
		}
		pending, err := db.Pending(ctx, pool, m.Schema, m.Migrations)
		if err != nil {
			return err
		}
		if pending {
			return fmt.Errorf("module %s has migrations not applied", m.Name)
		}
	}
	return s.bus.Ready(ctx) // the broker, under the rabbitmq transport
}

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

// close stops the bus (handlers in flight finish or roll back), releases
// pools and leaves the embedded PostgreSQL, in that order: it stops only
// when no other modshop process uses it (the shop while a CLI command
// ends, another serve on the same data directory).
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
