package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/config"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/openapi"
)

// GatewayConfig is what `modshop gateway` can be told, by flag or MODSHOP_*
// variable.
type GatewayConfig struct {
	Listen          string
	Routes          []GatewayRoute
	TrustedProxies  string
	LogLevel        string
	LogFormat       string
	ShutdownTimeout time.Duration
	UpstreamTimeout time.Duration
	// CORSOrigins: the origins whose pages may call the API from a
	// browser. The gateway answers CORS for the processes behind it.
	CORSOrigins string
	// MaxBodyBytes, MaxRequestsInFlight: the bounds every process applies
	// (Config); MaxConnsPerUpstream bounds the connections to each module
	// process.
	MaxBodyBytes        int
	MaxRequestsInFlight int
	MaxConnsPerUpstream int
}

// GatewayRoute sends every request whose path is Prefix, or starts with
// Prefix followed by a slash, to Upstream.
type GatewayRoute struct {
	Prefix   string
	Upstream *url.URL
}

// routeList is the repeatable --route flag.
type routeList []string

func (r *routeList) String() string     { return strings.Join(*r, ",") }
func (r *routeList) Set(v string) error { *r = append(*r, v); return nil }

// bindGatewayConfig registers the gateway's settings. The routes come from
// --route (repeatable), or else from MODSHOP_GATEWAY_ROUTES (comma-separated).
func bindGatewayConfig(s *config.Set, c *GatewayConfig, routes *routeList, envRoutes *string) {
	s.String(&c.Listen, "listen", "MODSHOP_GATEWAY_LISTEN", ":8080", "address the gateway listens on")
	s.String(envRoutes, "routes", "MODSHOP_GATEWAY_ROUTES", "", "comma-separated PREFIX=URL routes, e.g. /api/v1/orders=http://127.0.0.1:8083 (or repeat --route PREFIX=URL)")
	const routeUsage = "PREFIX=URL: send requests under PREFIX to the process at URL (repeatable; replaces --routes)"
	s.FS.Var(routes, "route", routeUsage)
	s.Settings = append(s.Settings, config.Setting{Flag: "route", Env: "(repeat the flag)", Usage: routeUsage})
	s.String(&c.TrustedProxies, "trusted-proxies", "MODSHOP_TRUSTED_PROXIES", "", "comma-separated proxy addresses/CIDRs in front of the gateway whose X-Forwarded-* headers are kept")
	s.String(&c.LogLevel, "log-level", "MODSHOP_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "MODSHOP_LOG_FORMAT", "text", "text or json")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "MODSHOP_SHUTDOWN_TIMEOUT", 20*time.Second, "how long requests in flight may take to finish on shutdown")
	s.String(&c.CORSOrigins, "cors-origins", "MODSHOP_CORS_ORIGINS", "", "comma-separated origins whose pages may call the API from a browser; the gateway answers CORS itself (give the module processes the same list: their CSRF check trusts it)")
	s.Duration(&c.UpstreamTimeout, "upstream-timeout", "MODSHOP_GATEWAY_UPSTREAM_TIMEOUT", 60*time.Second, "how long the gateway waits for a module process to start answering")
	s.Int(&c.MaxBodyBytes, "max-body-bytes", "MODSHOP_MAX_BODY_BYTES", 1<<20, "largest request body sent on (413 above)")
	s.Int(&c.MaxRequestsInFlight, "max-requests-in-flight", "MODSHOP_MAX_REQUESTS_IN_FLIGHT", 0, "requests served at once; beyond, a request is answered 503 with Retry-After at once (/healthz, /readyz and /metrics excepted); 0: sized from memory and the body limit")
	s.Int(&c.MaxConnsPerUpstream, "max-conns-per-upstream", "MODSHOP_GATEWAY_MAX_CONNS_PER_UPSTREAM", 256, "connections the gateway opens to each module process at most; more requests wait for one")
}

// parseGatewayConfig reads the gateway's flags and environment.
func parseGatewayConfig(env Env, args []string) (GatewayConfig, error) {
	s := config.NewSet("gateway", env.Lookup)
	s.FS.SetOutput(io.Discard)
	var c GatewayConfig
	var flagRoutes routeList
	var envRoutes string
	bindGatewayConfig(s, &c, &flagRoutes, &envRoutes)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(env.Stdout, "gateway", s)
			return c, errHelpShown
		}
		return c, fmt.Errorf("gateway: %w (see modshop gateway --help)", err)
	}
	if s.FS.NArg() > 0 {
		return c, fmt.Errorf("gateway: unexpected argument %q (see modshop gateway --help)", s.FS.Arg(0))
	}
	raw := []string(flagRoutes)
	if len(raw) == 0 {
		for _, r := range strings.Split(envRoutes, ",") {
			if r = strings.TrimSpace(r); r != "" {
				raw = append(raw, r)
			}
		}
	}
	var errs []error
	for _, r := range raw {
		route, err := parseGatewayRoute(r)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if slices.ContainsFunc(c.Routes, func(o GatewayRoute) bool { return o.Prefix == route.Prefix }) {
			errs = append(errs, fmt.Errorf("route %q: prefix %s is routed twice", r, route.Prefix))
			continue
		}
		c.Routes = append(c.Routes, route)
	}
	if len(raw) == 0 {
		errs = append(errs, errors.New("no routes: give --route PREFIX=URL for each module process (or MODSHOP_GATEWAY_ROUTES)"))
	}
	if _, err := parseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if _, err := httpx.ParseOrigins(c.CORSOrigins); err != nil {
		errs = append(errs, fmt.Errorf("MODSHOP_CORS_ORIGINS: %w", err))
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 64<<20 {
		errs = append(errs, fmt.Errorf("MODSHOP_MAX_BODY_BYTES=%d: must be from 1024 to 67108864", c.MaxBodyBytes))
	}
	if c.MaxRequestsInFlight < 0 || c.MaxRequestsInFlight > 100_000 {
		errs = append(errs, fmt.Errorf("MODSHOP_MAX_REQUESTS_IN_FLIGHT=%d: must be from 0 (sized from memory) to 100000", c.MaxRequestsInFlight))
	}
	if c.MaxConnsPerUpstream < 1 || c.MaxConnsPerUpstream > 100_000 {
		errs = append(errs, fmt.Errorf("MODSHOP_GATEWAY_MAX_CONNS_PER_UPSTREAM=%d: must be from 1 to 100000", c.MaxConnsPerUpstream))
	}
	if c.ShutdownTimeout <= 0 || c.UpstreamTimeout <= 0 {
		errs = append(errs, errors.New("MODSHOP_SHUTDOWN_TIMEOUT and MODSHOP_GATEWAY_UPSTREAM_TIMEOUT must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("gateway: %w", err)
	}
	return c, nil
}

// parseGatewayRoute reads PREFIX=URL.
func parseGatewayRoute(raw string) (GatewayRoute, error) {
	prefix, target, ok := strings.Cut(raw, "=")
	if !ok {
		return GatewayRoute{}, fmt.Errorf("route %q: want PREFIX=URL, such as /api/v1/orders=http://127.0.0.1:8083", raw)
	}
	prefix = strings.TrimSpace(prefix)
	if !strings.HasPrefix(prefix, "/") || strings.ContainsAny(prefix, "?#* ") {
		return GatewayRoute{}, fmt.Errorf("route %q: the prefix must be a path starting with /", raw)
	}
	if prefix != "/" {
		prefix = strings.TrimRight(prefix, "/")
	}
	if err := checkHTTPURL(strings.TrimSpace(target)); err != nil {
		return GatewayRoute{}, fmt.Errorf("route %q: %w", raw, err)
	}
	u, _ := url.Parse(strings.TrimSpace(target))
	return GatewayRoute{Prefix: prefix, Upstream: u}, nil
}

// parseTrustedProxies reads comma-separated addresses and CIDRs.
func parseTrustedProxies(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if pre, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(p)
		if err != nil {
			return nil, fmt.Errorf("MODSHOP_TRUSTED_PROXIES: %q is neither an address nor a CIDR", p)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// runGateway serves the gateway until SIGINT or SIGTERM.
func runGateway(ctx context.Context, env Env, args []string) error {
	cfg, err := parseGatewayConfig(env, args)
	if err != nil {
		return err
	}
	log, err := newLogger(Config{LogLevel: cfg.LogLevel, LogFormat: cfg.LogFormat}, env.Stderr)
	if err != nil {
		return err
	}
	flush, err := setupTracing(ctx, env, gatewayServiceName, log)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer flush() // after the HTTP server has stopped
	h, err := NewGateway(cfg, log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: listen on %s: %w (set --listen or MODSHOP_GATEWAY_LISTEN to another address)", cfg.Listen, err)
	}
	for _, r := range cfg.Routes {
		log.Info("gateway route", "prefix", r.Prefix, "upstream", r.Upstream.String())
	}
	log.Info("modshop gateway ready", "addr", ln.Addr().String())
	return httpx.Serve(ctx, ln, h, cfg.ShutdownTimeout, log)
}

// OpenAPIDocument is the OpenAPI document of the whole shop, as JSON: what
// /api/openapi.json serves when every module runs (tools/openapi-lint
// lints it).
func OpenAPIDocument() ([]byte, error) { return gatewayDoc() }

// gatewayDoc is the OpenAPI document of the whole shop: what the modules
// behind the gateway serve, together. The gateway reads the fragments
// from the definitions; it builds no module.
func gatewayDoc() ([]byte, error) {
	_, raw, err := openAPIDocument(Modules(Config{}))
	return raw, err
}

// openAPIDocument assembles the document of a process running mods: the
// bus's staff endpoints (every process serves them) and each module's
// fragment.
func openAPIDocument(mods []Module) (*openapi3.T, []byte, error) {
	fragments := [][]byte{bus.OpenAPI()}
	for _, m := range mods {
		fragments = append(fragments, m.OpenAPI)
	}
	return openapi.Build(fragments...)
}
