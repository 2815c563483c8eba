// Package user is the user module: accounts, sessions, roles and
// permissions, in schema users. It is the face the composition root sees;
// everything else lives in internal/.
package user

import (
	"context"
	_ "embed"
	"log/slog"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/modules/user/internal/accounts"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/module"
)

// Name is the module's name (its migrations folder); Schema its schema.
const (
	Name   = "user"
	Schema = "users"
)

//go:embed openapi.yaml
var openAPI []byte

// HandlerOnBackfillRequested publishes the accounts, a page at a time, for
// a copy of them that is new or rebuilt (bus.AnswerBackfills). A handler's
// name is its consumer group's durable id: see docs/adding-a-module.md.
const HandlerOnBackfillRequested = "user.on_backfill_requested"

// Definition is the user module as the composition root sees it,
// configured by cfg. Its one bus handler answers backfill requests for
// the accounts. It owns sessions: a process
// that runs it checks tokens with it (Module.Authenticator), one that
// does not asks a process that does (RemoteAuthenticator). Its password
// hashing metrics go to the shop's registry unless cfg names one.
func Definition(cfg Config) module.Definition {
	return module.Definition{
		Name:                Name,
		Schema:              Schema,
		OpenAPI:             openAPI,
		Paths:               []string{"/api/v1/users", "/api/v1/sessions"},
		Handlers:            []string{HandlerOnBackfillRequested},
		RegisterEvents:      RegisterEvents,
		RemoteAuthenticator: RemoteAuthenticator,
		New: func(d module.Deps) (module.Instance, error) {
			c := cfg
			if c.Metrics == nil {
				c.Metrics = d.Metrics
			}
			return New(Deps{DB: d.DB, Bus: d.Bus, Log: d.Log, Config: c}), nil
		},
	}
}

// Config tunes sessions, throttles and password hashing.
type Config = accounts.Config

// ThrottleConfig bounds log-in attempts.
type ThrottleConfig = accounts.ThrottleConfig

// RegisterThrottleConfig bounds registrations per client address.
type RegisterThrottleConfig = accounts.RegisterThrottleConfig

// HashConfig bounds the password hashes in flight.
type HashConfig = accounts.HashConfig

// DefaultThrottle is the log-in throttle a shop starts with;
// DefaultRegisterThrottle the registration one.
var (
	DefaultThrottle         = accounts.DefaultThrottle
	DefaultRegisterThrottle = accounts.DefaultRegisterThrottle
)

// DefaultHashWait is how long a request waits for a hashing slot.
const DefaultHashWait = accounts.DefaultHashWait

// User is an account as other code may see it.
type User = accounts.User

// Deps is what the module needs from the composition root. DB acts as the
// module's own database role.
type Deps struct {
	DB     *gorm.DB
	Bus    *bus.Bus
	Log    *slog.Logger
	Config Config
}

// RegisterEvents adds the module's events to the bus registry.
func RegisterEvents(r *bus.Registry) {
	r.Register(events.UserRegistered{}, events.UserUpdated{}, events.UsersBackfilled{}, bus.BackfillRequested{})
}

// Module is the user module.
type Module struct{ svc *accounts.Service }

// New builds the module.
func New(d Deps) *Module {
	m := &Module{svc: accounts.NewService(d.DB, d.Bus, d.Log.With("module", Name), d.Config)}
	bus.AnswerBackfills(d.Bus, HandlerOnBackfillRequested, Name, bus.Consumer{Module: Name, DB: d.DB}, m.svc.BackfillPage)
	return m
}

// Name returns the module's name.
func (m *Module) Name() string { return Name }

// Schema returns the module's database schema.
func (m *Module) Schema() string { return Schema }

// Routes mounts the module's endpoints under /api/v1.
func (m *Module) Routes(api *gin.RouterGroup) { m.svc.Routes(api) }

// Run keeps the session cache in step with the database (every change to
// a session, an account's standing or its roles, announced by the
// database) until ctx ends; without it, every request asks the database.
func (m *Module) Run(ctx context.Context) { m.svc.ListenForSessionChanges(ctx) }

// Authenticator resolves session tokens for the platform auth middleware.
func (m *Module) Authenticator() auth.Authenticator { return m.svc }

// CreateUser makes an account from the command line; admin adds the admin
// role to the customer role.
func (m *Module) CreateUser(ctx context.Context, username, email, password string, admin bool) (User, error) {
	roles := []string{"customer"}
	if admin {
		roles = append(roles, auth.RoleAdmin)
	}
	return m.svc.Register(ctx, accounts.Registration{Username: username, Email: email, Password: password}, roles)
}
