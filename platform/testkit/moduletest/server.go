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
	// Routes mounts the module's endpoints under /api/v1 (its Routes).
	Routes func(*gin.RouterGroup)
	// OpenAPI is the module's fragment of the document (its OpenAPI).
	OpenAPI       []byte
	Authenticator auth.Authenticator
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
	doc, _, err := openapi.Build(c.OpenAPI)
	if err != nil {
		tb.Fatalf("OpenAPI document of the module: %v", err)
	}
	limit, _ := httpx.DefaultInFlight(c.MaxBodyBytes)
	r, err := httpstack.New(httpstack.Config{
		Log:           c.Log,
		Metrics:       httpx.NewMetrics(),
		InFlight:      httpx.NewInFlight(limit, int64(c.MaxBodyBytes)),
		Authenticator: c.Authenticator,
	})
	if err != nil {
		tb.Fatal(err)
	}
	r.NoRoute(httpx.NoRoute)
	c.Routes(r.Group("/api/v1"))
	srv := httptest.NewServer(r)
	tb.Cleanup(srv.Close)
	return &Server{URL: srv.URL, API: testkit.NewAPI(tb, srv.URL, doc)}
}
