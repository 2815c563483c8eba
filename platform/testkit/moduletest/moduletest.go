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

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
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
	b := NewBus(tb, mdb.URL, mdb.Admin, registry, spec.Schema)
	return &Module{ModuleDatabase: mdb, Bus: b, Events: NewRecorder(b, mdb.DB), Auth: NewFakeAuth()}
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
	return NewServer(tb, ServerConfig{Routes: routes, OpenAPI: fragment, Authenticator: m.Auth})
}

// ServeWith is Serve with another authenticator (the user module's own).
func (m *Module) ServeWith(tb testing.TB, routes func(*gin.RouterGroup), fragment []byte, a auth.Authenticator) *Server {
	tb.Helper()
	return NewServer(tb, ServerConfig{Routes: routes, OpenAPI: fragment, Authenticator: a})
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
