package httpx

import (
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modshop/modshop/platform/config"
)

// InFlight bounds the requests a server works on at once. Each may hold a
// body of up to the body limit and what decoding makes of it, so requests
// in flight are memory in use. Beyond the bound a request is answered 503
// with Retry-After at once: it does not queue, and the server's memory
// stays bounded whatever arrives. Some paths (the operators' probes) are
// never refused.
type InFlight struct {
	limit   int64
	n       atomic.Int64
	exempt  map[string]bool
	refused prometheus.Counter
	busy    *Problem
}

// NewInFlight bounds requests in flight at limit, except those for the
// exempt paths (such as /healthz).
func NewInFlight(limit int, exempt ...string) *InFlight {
	l := &InFlight{
		limit:  int64(max(limit, 1)),
		exempt: map[string]bool{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modshop_http_requests_refused_total",
			Help: "HTTP requests answered 503 because as many as the bound were in flight.",
		}),
		busy: NewProblem(http.StatusServiceUnavailable, "overloaded",
			"the server is answering as many requests as it can; try again in a moment"),
	}
	l.busy.RetryAfter = 1
	for _, p := range exempt {
		l.exempt[p] = true
	}
	return l
}

// Limit is the bound.
func (l *InFlight) Limit() int { return int(l.limit) }

// Register adds the bound's metrics to reg.
func (l *InFlight) Register(reg prometheus.Registerer) error {
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "modshop_http_requests_in_flight",
		Help: "HTTP requests being served (the operators' probes not counted).",
	}, func() float64 { return float64(l.n.Load()) })
	limit := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "modshop_http_requests_in_flight_limit",
		Help: "The bound on HTTP requests in flight (MODSHOP_MAX_REQUESTS_IN_FLIGHT).",
	}, func() float64 { return float64(l.limit) })
	for _, c := range []prometheus.Collector{inFlight, limit, l.refused} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Middleware takes a place for the request, or refuses it when none is
// free, and gives the place back when the request ends (also by a panic).
func (l *InFlight) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if l.exempt[c.Request.URL.Path] {
			c.Next()
			return
		}
		if l.n.Add(1) > l.limit {
			l.n.Add(-1)
			l.refused.Inc()
			WriteProblem(c, l.busy)
			c.Abort()
			return
		}
		defer l.n.Add(-1)
		c.Next()
	}
}

// inFlightMemoryShare is the part of the process's memory that requests
// in flight may take: a quarter (password hashes may take another).
const inFlightMemoryShare = 4

// requestBodyFactor is the memory one request may take, in bodies: the
// body read whole (its buffer grows to about twice it) and what decoding
// makes of it. Measured: a 1 MiB body costs 1 to 3 MiB; lists of small
// items decode larger, and the routes that take them bound their bodies
// lower (an order: 64 KiB).
const requestBodyFactor = 4

// Bounds of the default, whatever the memory.
const (
	minInFlight     = 16
	maxInFlight     = 1024
	unknownInFlight = 256
)

// SizeInFlight is the default bound for memory bytes (0: unknown) and a
// body limit of bodyBytes: a quarter of the memory at four bodies a
// request, from 16 to 1024; 256 when the memory is unknown.
func SizeInFlight(memory uint64, bodyBytes int) int {
	if memory == 0 {
		return unknownInFlight
	}
	per := uint64(max(bodyBytes, 1)) * requestBodyFactor
	return int(min(maxInFlight, max(minInFlight, memory/inFlightMemoryShare/per)))
}

// DefaultInFlight sizes the bound from this process's memory
// (config.ProcessMemory) and the body limit, and says how it got there.
func DefaultInFlight(bodyBytes int) (limit int, why string) {
	mem, source := config.ProcessMemory()
	limit = SizeInFlight(mem, bodyBytes)
	if mem == 0 {
		return limit, "memory unknown"
	}
	return limit, fmt.Sprintf("a quarter of %d MiB (%s) at 4 times the body limit (%d bytes) a request, from %d to %d",
		mem>>20, source, bodyBytes, minInFlight, maxInFlight)
}
