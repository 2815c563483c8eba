package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/modshop/modshop/platform/httpstack"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
)

// gateway is one entry point in front of module processes: it sends each
// request to the process that serves its path prefix and serves the web UI
// and the whole shop's OpenAPI document itself.
type gateway struct {
	routes  []*gatewayUpstream // longest prefix first
	trusted []netip.Prefix
	log     *slog.Logger
	client  *http.Client // for readiness checks
	proxied *prometheus.CounterVec
	// ready asks the module processes at most about once a second,
	// however many call /readyz.
	ready *recentProbe[gatewayReadiness]
}

// gatewayReadiness is what asking every module process found: the route
// prefixes whose process is ready, and those whose process is not.
type gatewayReadiness struct {
	ready, down []string
}

type gatewayUpstream struct {
	GatewayRoute
	proxy *httputil.ReverseProxy
}

// ginContextKey carries the gin context into the proxy's hooks, so that an
// error answer carries the request id like every other.
type ginContextKey struct{}

// headersSetHere are set by the gateway on every answer: an upstream's
// copies are dropped so that no answer carries two.
var headersSetHere = []string{
	httpx.RequestIDHeader, "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
	"Cross-Origin-Opener-Policy", "Content-Security-Policy",
}

// gatewayServiceName is the gateway's name in traces (unless
// OTEL_SERVICE_NAME says otherwise).
var gatewayServiceName = telemetry.ServiceName([]string{"gateway"}, false)

// NewGateway builds the gateway's handler.
func NewGateway(cfg GatewayConfig, log *slog.Logger) (http.Handler, error) {
	trusted, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	docJSON, err := gatewayDoc()
	if err != nil {
		return nil, err
	}
	origins, err := httpx.ParseOrigins(cfg.CORSOrigins)
	if err != nil {
		return nil, fmt.Errorf("MODSHOP_CORS_ORIGINS: %w", err)
	}
	metrics := httpx.NewMetrics()
	g := &gateway{
		trusted: trusted,
		log:     log,
		client:  &http.Client{Timeout: 3 * time.Second},
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modshop_gateway_requests_total",
			Help: "Requests the gateway sent on, by route prefix and the status answered.",
		}, []string{"prefix", "status"}),
	}
	if err := metrics.Registry.Register(g.proxied); err != nil {
		return nil, err
	}
	g.ready = newRecentProbe(g.askUpstreams)
	limit, why := inFlightBound(cfg.MaxRequestsInFlight, cfg.MaxBodyBytes)
	bound := httpx.NewInFlight(limit, int64(cfg.MaxBodyBytes), probePaths...)
	if err := bound.Register(metrics.Registry); err != nil {
		return nil, err
	}
	log.Info("requests in flight bounded", "limit", limit, "sized", why, "connections per upstream", cfg.MaxConnsPerUpstream)
	// At most MaxConnsPerUpstream connections to each process: requests
	// beyond wait for one (and the in-flight bound caps how many wait).
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxConnsPerHost:       cfg.MaxConnsPerUpstream,
		MaxIdleConnsPerHost:   min(64, cfg.MaxConnsPerUpstream),
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.UpstreamTimeout,
	}
	// Each request sent on is a client span ("gateway proxy GET"), and
	// the traceparent it carries makes the process's server span its child.
	traced := telemetry.Transport(transport, "gateway proxy")
	for _, r := range cfg.Routes {
		u := &gatewayUpstream{GatewayRoute: r}
		u.proxy = &httputil.ReverseProxy{
			Rewrite:        g.rewrite(r),
			Transport:      traced,
			ModifyResponse: dropHeadersSetHere,
			ErrorHandler:   g.upstreamFailed(r),
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		g.routes = append(g.routes, u)
	}
	sort.SliceStable(g.routes, func(i, j int) bool { return len(g.routes[i].Prefix) > len(g.routes[j].Prefix) })

	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(proxyStrings(trusted)); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	e.Use(
		httpx.RequestIDs(),
		// The gateway's server span, child of the caller's traceparent,
		// before the access log as in every process (httpstack).
		telemetry.Gin(gatewayServiceName, httpstack.Untraced),
		httpx.AccessLog(log),
		metrics.Middleware(),
		httpx.Recover(log),
		httpx.SecurityHeaders(),
		httpx.CORS(origins...), // preflights end here; the processes behind check CSRF
		// Receives the body whole (413 beyond the body limit) before a place
		// is taken and the request is sent on: a process behind gets it at
		// once, with its length.
		bound.Middleware(),
		httpx.Errors(log),
	)
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", g.readyz)
	e.GET("/metrics", metrics.Handler())
	e.GET("/api/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", docJSON) })
	g.busRoutes(e) // one view of the bus, merged from every process (gateway_bus.go)
	e.NoRoute(g.forward)
	e.NoMethod(httpx.NoMethod)
	return e, nil
}

func proxyStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// match finds the route of a path: the longest prefix that is the whole
// path or ends where a path segment does.
func (g *gateway) match(path string) *gatewayUpstream {
	for _, r := range g.routes {
		if r.Prefix == "/" || path == r.Prefix || strings.HasPrefix(path, r.Prefix+"/") {
			return r
		}
	}
	return nil
}

// forward sends a request on to its module process; a path no route
// takes is the web UI's, or a 404 problem under /api/.
func (g *gateway) forward(c *gin.Context) {
	r := g.match(c.Request.URL.Path)
	if r == nil {
		serveWebUI(c)
		return
	}
	// The gateway's server span is named after the route prefix it takes
	// ("GET /api/v1/orders"): the process behind names its own after the
	// route it serves.
	trace.SpanFromContext(c.Request.Context()).SetName(c.Request.Method + " " + r.Prefix)
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), ginContextKey{}, c))
	r.proxy.ServeHTTP(c.Writer, c.Request)
	g.proxied.WithLabelValues(r.Prefix, strconv.Itoa(c.Writer.Status())).Inc()
}

// rewrite makes the request the module process receives: the same path
// and Host (so that the module's cross-origin checks and any absolute
// links see what the browser sent), the request id, and X-Forwarded-For,
// -Host and -Proto describing the client. What a client says in its own
// X-Forwarded-* headers is believed only from a trusted proxy.
func (g *gateway) rewrite(r GatewayRoute) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(r.Upstream)
		pr.Out.Host = pr.In.Host
		if g.fromTrustedProxy(pr.In) {
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
		}
		pr.SetXForwarded()
		if g.fromTrustedProxy(pr.In) {
			if v := pr.In.Header.Get("X-Forwarded-Proto"); v != "" {
				pr.Out.Header.Set("X-Forwarded-Proto", v)
			}
			if v := pr.In.Header.Get("X-Forwarded-Host"); v != "" {
				pr.Out.Header.Set("X-Forwarded-Host", v)
			}
		}
		if c, ok := pr.In.Context().Value(ginContextKey{}).(*gin.Context); ok {
			pr.Out.Header.Set(httpx.RequestIDHeader, httpx.RequestID(c))
		}
	}
}

func (g *gateway) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func dropHeadersSetHere(resp *http.Response) error {
	for _, h := range headersSetHere {
		resp.Header.Del(h)
	}
	// CORS is the gateway's: two Access-Control-Allow-Origin headers would
	// make the browser refuse the answer.
	for h := range resp.Header {
		if httpx.CORSHeader(h) {
			resp.Header.Del(h)
		}
	}
	return nil
}

// upstreamFailed answers a request its module process did not answer: 502
// (504 when it took too long), as problem+json with the request id.
func (g *gateway) upstreamFailed(r GatewayRoute) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, req *http.Request, err error) {
		c, _ := req.Context().Value(ginContextKey{}).(*gin.Context)
		if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
			return // the client went away; nobody reads an answer
		}
		g.log.WarnContext(req.Context(), "gateway: upstream failed", "prefix", r.Prefix, "upstream", r.Upstream.String(),
			"method", req.Method, "path", req.URL.Path, "err", err)
		p := httpx.NewProblem(http.StatusBadGateway, "upstream-unavailable",
			"the service for "+r.Prefix+" does not answer; try again shortly")
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			p = httpx.NewProblem(http.StatusGatewayTimeout, "upstream-timeout",
				"the service for "+r.Prefix+" took too long to answer")
		}
		if c == nil {
			http.Error(w, p.Detail, p.Status)
			return
		}
		httpx.WriteProblem(c, p)
	}
}

// readyz is ready when every module process behind the gateway is. It
// answers anyone, however many requests are in flight: the processes are
// asked at most about once a second (g.ready).
func (g *gateway) readyz(c *gin.Context) {
	r, err := g.ready.result(c.Request.Context())
	if err != nil {
		return // the caller went away
	}
	if len(r.down) > 0 {
		httpx.WriteProblem(c, httpx.NewProblem(http.StatusServiceUnavailable, "not-ready",
			"not ready behind "+strings.Join(r.down, ", ")))
		return
	}
	checks := gin.H{}
	for _, prefix := range r.ready {
		checks[prefix] = "ok"
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

// askUpstreams asks each module process (once, whatever the number of
// routes to it) whether it is ready.
func (g *gateway) askUpstreams(ctx context.Context) gatewayReadiness {
	seen := map[string]bool{}
	var targets []*gatewayUpstream
	for _, r := range g.routes {
		if !seen[r.Upstream.String()] {
			seen[r.Upstream.String()] = true
			targets = append(targets, r)
		}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, r := range targets {
		wg.Go(func() { errs[i] = g.upstreamReady(ctx, r) })
	}
	wg.Wait()
	var out gatewayReadiness
	for i, r := range targets {
		if errs[i] != nil {
			g.log.WarnContext(ctx, "gateway: upstream not ready", "prefix", r.Prefix, "err", errs[i])
			out.down = append(out.down, r.Prefix)
			continue
		}
		out.ready = append(out.ready, r.Prefix)
	}
	sort.Strings(out.down)
	return out
}

func (g *gateway) upstreamReady(ctx context.Context, r *gatewayUpstream) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.Upstream.JoinPath("/readyz").String(), nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close() // only the status matters
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz answered %d", resp.StatusCode)
	}
	return nil
}
