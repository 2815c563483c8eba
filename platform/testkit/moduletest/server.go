package moduletest

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpstack"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/openapi"
	"github.com/modshop/modshop/platform/testkit"
)

// DefaultMaxBodyBytes is the shop's default body limit
// (MODSHOP_MAX_BODY_BYTES).
const DefaultMaxBodyBytes = 1 << 20

// ServerConfig is what a module's test server serves.
type ServerConfig struct {
	// Routes mount endpoints under /api/v1: the module's Routes, and the
	// bus's (bus.Routes) where a test needs its staff pages.
	Routes []func(*gin.RouterGroup)
	// OpenAPI are the fragments of the document those routes answer to
	// (the module's OpenAPI, bus.OpenAPI()).
	OpenAPI       [][]byte
	Authenticator auth.Authenticator
	// Metrics counts requests and is served at /metrics (default: its own).
	Metrics *httpx.Metrics
	// TrustedProxies may speak for other client addresses with
	// X-Forwarded-For, as MODSHOP_TRUSTED_PROXIES says (default none).
	TrustedProxies []string
	// MaxBodyBytes is the body limit (default DefaultMaxBodyBytes).
	MaxBodyBytes int
	Log          *slog.Logger
}

// Server is a module served on a loopback port.
type Server struct {
	URL string
	// API checks every response against the module's own fragment
	// (with the base document every fragment joins).
	API *testkit.API
}

// NewServer serves c.Routes behind the shop's middleware stack
// (platform/httpstack) until the test ends.
func NewServer(tb testing.TB, c ServerConfig) *Server {
	tb.Helper()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Log == nil {
		c.Log = testkit.Logger()
	}
	if c.Metrics == nil {
		c.Metrics = httpx.NewMetrics()
	}
	doc, _, err := openapi.Build(c.OpenAPI...)
	if err != nil {
		tb.Fatalf("OpenAPI document of the module: %v", err)
	}
	limit, _ := httpx.DefaultInFlight(c.MaxBodyBytes)
	r, err := httpstack.New(httpstack.Config{
		Log:            c.Log,
		Metrics:        c.Metrics,
		InFlight:       httpx.NewInFlight(limit, int64(c.MaxBodyBytes), "/metrics"),
		TrustedProxies: c.TrustedProxies,
		Authenticator:  c.Authenticator,
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.NoRoute(httpx.NoRoute)
	r.GET("/metrics", c.Metrics.Handler())
	api := r.Group("/api/v1")
	for _, routes := range c.Routes {
		routes(api)
	}
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return &Server{URL: srv.URL, API: testkit.NewAPI(tb, srv.URL, doc)}
}
