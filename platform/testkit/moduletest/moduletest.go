// Package moduletest runs one module for its tests, without the shop and
// without any other module: a database with the module's schema, role and
// migrations only (testkit.NewModuleDatabase), a bus on that database, a
// recorder of the events the module publishes, a fake authenticator and an
// HTTP server with the shop's middleware stack around the module's routes.
// A test builds the module with its own New(Deps) between New and Start,
// and plays the other modules by publishing their events.
//
// It is apart from platform/testkit because the bus's own tests use
// testkit, and this package uses the bus.
package moduletest

import (
	"context"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/testkit"
)

// Module is the world one module runs in under test.
type Module struct {
	*testkit.ModuleDatabase
	// Bus is the module's bus, on the module's database. Build the module
	// on it (its handlers subscribe), then Start.
	Bus *bus.Bus
	// Events records what is published on Bus, for the event types the
	// test names with Record before Start.
	Events *Recorder
	// Auth is a fake authenticator: tokens the test makes for callers.
	Auth *FakeAuth
	// Metrics is where the bus and the server count, served at /metrics;
	// pass Metrics.Registry to a module that has metrics of its own.
	Metrics *httpx.Metrics

	registry *bus.Registry
}

// New creates the module's database and a bus on it whose registry
// register fills (the module's RegisterEvents, and those of the events the
// test publishes). The bus is not started.
func New(tb testing.TB, spec testkit.ModuleSpec, register ...func(*bus.Registry)) *Module {
	tb.Helper()
	mdb := testkit.NewModuleDatabase(tb, spec)
	registry := bus.NewRegistry()
	for _, r := range register {
		r(registry)
	}
	metrics := httpx.NewMetrics()
	b := NewBus(tb, mdb.Admin, bus.Config{DatabaseURL: mdb.URL, Metrics: metrics.Registry}, registry, spec.Schema)
	return &Module{ModuleDatabase: mdb, Bus: b, Events: NewRecorder(b, mdb.DB), Auth: NewFakeAuth(), Metrics: metrics, registry: registry}
}

// Replica is a second process of the module on the same database: a pool,
// a bus and metrics of its own, the same fake callers. Build the module on
// it and Start it as for the first.
func (m *Module) Replica(tb testing.TB) *Module {
	tb.Helper()
	mdb := *m.ModuleDatabase
	mdb.DB = mdb.Pool(tb, 8)
	metrics := httpx.NewMetrics()
	b := NewBus(tb, mdb.Admin, bus.Config{DatabaseURL: mdb.URL, Metrics: metrics.Registry}, m.registry, mdb.Schema)
	return &Module{ModuleDatabase: &mdb, Bus: b, Events: NewRecorder(b, mdb.DB), Auth: m.Auth, Metrics: metrics, registry: m.registry}
}

// Start starts the bus: every handler, the module's and the recorder's,
// must be subscribed by now.
func (m *Module) Start(tb testing.TB) {
	tb.Helper()
	StartBus(tb, m.Bus)
}

// Publish publishes events as another module would, in a transaction of
// their own on the superuser's connection. ctx may carry a correlation id
// or an idempotency key (bus.WithCorrelationID, bus.WithIdempotencyKey).
func (m *Module) Publish(ctx context.Context, events ...bus.Event) error {
	return Publish(ctx, m.Bus, m.Admin, events...)
}

// Serve serves the module's routes behind the shop's middleware stack,
// authenticating callers with m.Auth; its API client checks responses
// against the module's own OpenAPI fragment.
func (m *Module) Serve(tb testing.TB, routes func(*gin.RouterGroup), fragment []byte) *Server {
	tb.Helper()
	return m.ServeConfig(tb, ServerConfig{Routes: []func(*gin.RouterGroup){routes}, OpenAPI: [][]byte{fragment}})
}

// ServeConfig serves as c says; what it leaves unset is m's: the fake
// authenticator, m.Metrics.
func (m *Module) ServeConfig(tb testing.TB, c ServerConfig) *Server {
	tb.Helper()
	if c.Authenticator == nil {
		c.Authenticator = m.Auth
	}
	if c.Metrics == nil {
		c.Metrics = m.Metrics
	}
	return NewServer(tb, c)
}

// Run does the module's background work (its Run) until the test ends,
// and waits for it to stop before the bus and the database close.
func (m *Module) Run(tb testing.TB, run func(context.Context)) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
}
