// Package module says what a module is to the composition root: one
// Definition per module (its name, schema, OpenAPI fragment, paths,
// events, durable handler names and constructor). The composition root
// keeps the definitions in one list and loops over it to provision,
// migrate, configure, build, wire and describe the shop. It knows no
// module; see docs/adding-a-module.md.
package module

import (
	"context"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
)

// Definition is one module as the composition root sees it. Everything
// but New can be read without building the module: a gateway describes
// modules it does not run, and every process registers every module's
// events.
type Definition struct {
	// Name is the module's name: as MODSHOP_MODULES spells it, the folder
	// of its migrations (migrations/<Name>) and the stem of its own
	// settings (MODSHOP_<NAME>_DATABASE_URL, --<name>-database-url).
	Name string
	// Schema is the module's PostgreSQL schema; its role is
	// modshop_<Schema>.
	Schema string
	// OpenAPI is the module's fragment of the OpenAPI document.
	OpenAPI []byte
	// Paths are the path prefixes of the module's endpoints
	// (/api/v1/orders): where a gateway in front of split processes sends
	// them.
	Paths []string
	// Handlers names the module's bus handlers. A handler's name is its
	// consumer group's durable id (offsets, inboxes, dead letters,
	// RabbitMQ queues): see docs/adding-a-module.md before adding one.
	Handlers []string
	// RegisterEvents adds the events the module publishes to a bus
	// registry; nil: it publishes none.
	RegisterEvents func(r *bus.Registry)
	// New builds the module on deps, subscribing its handlers to deps.Bus.
	// Only a process that runs the module calls it.
	New func(deps Deps) (Instance, error)
	// RemoteAuthenticator is set by the one module that owns sessions: it
	// checks tokens by asking a process that runs the module, at baseURL,
	// for processes that do not. That module's Instance is an
	// Authenticating.
	RemoteAuthenticator func(baseURL string, log *slog.Logger) auth.Authenticator
}

// Deps is what the composition root gives a module it builds. The
// module's own settings are its definition's business: each module's
// Definition function takes its typed Config.
type Deps struct {
	// DB acts as the module's own database role, its schema first on the
	// search path.
	DB      *gorm.DB
	Bus     *bus.Bus
	Log     *slog.Logger
	Metrics prometheus.Registerer
}

// Instance is a built module.
type Instance interface {
	// Routes mounts the module's endpoints under /api/v1.
	Routes(api *gin.RouterGroup)
}

// Runner is an Instance with background work: Run does it until ctx
// ends.
type Runner interface {
	Run(ctx context.Context)
}

// Authenticating is the Instance of the module that owns sessions: it
// checks the session tokens of every request.
type Authenticating interface {
	Authenticator() auth.Authenticator
}
