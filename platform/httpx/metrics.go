package httpx

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics counts requests by route and status and times them. It owns its
// own registry (no global state), which also carries the Go runtime and
// process collectors; other packages register their collectors on it.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics builds a registry with the request, Go and process collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "modshop_http_requests_total",
			Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "modshop_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Middleware records each request under its route pattern (never the raw
// path, which would explode the label set).
func (m *Metrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		m.duration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}

// MaxScrapesInFlight is how many /metrics requests are served at once.
// The in-flight bound never refuses /metrics (operators must see a busy
// server) and anyone may ask, while each scrape gathers and encodes the
// whole registry: a few at once are enough for any number of Prometheus
// servers.
const MaxScrapesInFlight = 4

// Handler serves the registry in the Prometheus text format, at most
// MaxScrapesInFlight requests at once; beyond, a 503 problem with
// Retry-After at once, as the in-flight bound answers.
func (m *Metrics) Handler() gin.HandlerFunc {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	scrapes := make(chan struct{}, MaxScrapesInFlight)
	busy := NewProblem(http.StatusServiceUnavailable, "overloaded",
		"as many scrapes as the server serves at once are in progress; try again in a moment")
	busy.RetryAfter = 1
	return func(c *gin.Context) {
		select {
		case scrapes <- struct{}{}:
			defer func() { <-scrapes }()
			h.ServeHTTP(c.Writer, c.Request)
		default:
			WriteProblem(c, busy)
		}
	}
}
