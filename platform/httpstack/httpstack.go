// Package httpstack owns the middleware every module's routes run behind,
// in the order they run: request ids, the request's server span, access
// log, metrics, recovery,
// security headers, CORS, the bound on requests in flight and their
// bodies, problem rendering, cross-origin protection, authentication and
// event correlation. The shop mounts its modules on it, and so does a
// module's test server (platform/testkit), so that a module tested on its
// own answers as it does in the shop.
package httpstack

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
)

// Config is what the stack needs.
type Config struct {
	// Service is the process's service name (telemetry.ServiceName), for
	// the attributes of its server spans; "modshop" when empty.
	Service string
	Log     *slog.Logger
	// Metrics counts requests; its registry is where the caller exposes it.
	Metrics *httpx.Metrics
	// InFlight bounds the requests served at once and reads each body
	// whole first (413 beyond its limit).
	InFlight *httpx.InFlight
	// CORSOrigins are the origins whose pages may call the API.
	CORSOrigins []string
	// TrustedProxies may set X-Forwarded-For (none when empty).
	TrustedProxies []string
	// Authenticator resolves session tokens to callers.
	Authenticator auth.Authenticator
}

// New returns a gin engine with the stack mounted and 405 answered as a
// problem. The caller adds its routes and what it serves for unknown paths.
func New(c Config) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(c.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	service := c.Service
	if service == "" {
		service = "modshop"
	}
	r.Use(
		httpx.RequestIDs(),
		// Before the access log, so that its line (logged with the
		// request's context) carries the trace and span ids.
		telemetry.Gin(service, Untraced),
		httpx.AccessLog(c.Log),
		c.Metrics.Middleware(),
		httpx.Recover(c.Log),
		httpx.SecurityHeaders(),
		httpx.CORS(c.CORSOrigins...),
		// Receives the body whole (413 beyond the body limit), then takes a
		// place; after CORS: a page on a listed origin can read the 503.
		c.InFlight.Middleware(),
		httpx.Errors(c.Log),
		httpx.CrossOriginProtection(c.CORSOrigins...),
		auth.Middleware(c.Authenticator),
		correlateEvents,
	)
	r.NoMethod(httpx.NoMethod)
	return r, nil
}

// correlateEvents makes events published while handling a request carry the
// request id as their correlation id, unless a module sets its own.
func correlateEvents(c *gin.Context) {
	c.Request = c.Request.WithContext(bus.WithCorrelationID(c.Request.Context(), httpx.RequestID(c)))
	c.Next()
}

// UntracedPaths are the paths whose requests make no span: probes and
// metrics scrapes, which would bury the shop's traces under their own.
var UntracedPaths = []string{"/healthz", "/readyz", "/metrics"}

// Untraced reports whether r is a request to one of UntracedPaths.
func Untraced(r *http.Request) bool { return slices.Contains(UntracedPaths, r.URL.Path) }
