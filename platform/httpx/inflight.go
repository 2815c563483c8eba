package httpx

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/modshop/modshop/platform/config"
)

// InFlight bounds the requests a server works on at once, and the bytes
// of their bodies. Each request in flight may hold a body of up to the body
// limit and what decoding makes of it, so requests in flight are memory
// in use. A request's body is received whole before the request takes a
// place: a client that sends its body slowly holds no place meanwhile,
// only the bytes it sent, which are charged to the bodies' bound (the
// bound on requests times the body limit) as they arrive and until the
// request ends. Beyond either bound a request is answered 503 with
// Retry-After at once: it does not queue, and the server's memory stays
// bounded whatever arrives. Some paths (the operators' probes) are never
// refused.
type InFlight struct {
	limit     int64
	n         atomic.Int64
	bodyLimit int64        // bytes in one body
	bodies    int64        // bytes in all the bodies held at once
	held      atomic.Int64 // bytes of bodies held now
	receiving atomic.Int64 // requests whose bodies are arriving
	exempt    map[string]bool
	refused   prometheus.Counter
	busy      *Problem
}

// NewInFlight bounds requests in flight at limit, each with a body of at
// most bodyBytes, except those for the exempt paths (such as /healthz).
func NewInFlight(limit int, bodyBytes int64, exempt ...string) *InFlight {
	l := &InFlight{
		limit:     int64(max(limit, 1)),
		bodyLimit: max(bodyBytes, 1),
		exempt:    map[string]bool{},
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "modshop_http_requests_refused_total",
			Help: "HTTP requests answered 503 because as many as the bound were in flight, or their bodies held as many bytes as they may.",
		}),
		busy: NewProblem(http.StatusServiceUnavailable, "overloaded",
			"the server is answering as many requests as it can; try again in a moment"),
	}
	l.bodies = l.limit * l.bodyLimit
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
	gauge := func(name, help string, f func() int64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	for _, c := range []prometheus.Collector{
		gauge("modshop_http_requests_in_flight", "HTTP requests being served (the operators' probes not counted).", l.n.Load),
		gauge("modshop_http_requests_in_flight_limit", "The bound on HTTP requests in flight (MODSHOP_MAX_REQUESTS_IN_FLIGHT).",
			func() int64 { return l.limit }),
		gauge("modshop_http_requests_receiving_body", "HTTP requests whose bodies are arriving (they hold no place in flight yet).",
			l.receiving.Load),
		gauge("modshop_http_request_body_bytes", "Bytes held by request bodies: those arriving and those of requests in flight.",
			l.held.Load),
		gauge("modshop_http_request_body_bytes_limit", "The bound on the bytes request bodies hold: the bound on requests in flight times the body limit.",
			func() int64 { return l.bodies }),
		l.refused,
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Middleware receives the request's body whole (413 beyond the body
// limit), then takes a place for the request, or refuses it when either
// bound is reached; it gives the place and the body's bytes back when the
// request ends (also by a panic). A request for an exempt path is neither
// counted nor received: its body is only limited.
func (l *InFlight) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		if l.exempt[c.Request.URL.Path] {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, l.bodyLimit)
			c.Next()
			return
		}
		charged, ok := l.receive(c)
		defer l.held.Add(-charged)
		if !ok {
			c.Abort()
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

// receive reads the request's body into memory, charging it to the
// bodies' bound as it arrives, and puts it in the request's place; the
// request then has a known length. It returns the bytes charged, and
// whether the request goes on; when not, it has answered it.
func (l *InFlight) receive(c *gin.Context) (charged int64, ok bool) {
	req := c.Request
	if req.ContentLength > l.bodyLimit {
		WriteProblem(c, BodyTooLarge(l.bodyLimit))
		return 0, false
	}
	if req.Body == nil || req.Body == http.NoBody {
		return 0, true
	}
	l.receiving.Add(1)
	data, charged, err := readBody(req.Body, req.ContentLength, l.bodyLimit, l.charge)
	l.receiving.Add(-1)
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, errBodiesBudget):
		l.refused.Inc()
		WriteProblem(c, l.busy)
		return charged, false
	case errors.As(err, &tooBig):
		WriteProblem(c, BodyTooLarge(tooBig.Limit))
		return charged, false
	case err != nil: // the client went away or stopped sending (the server's ReadTimeout)
		WriteProblem(c, BadRequest("the body could not be read"))
		return charged, false
	}
	_ = req.Body.Close()
	req.Body = &receivedBody{data: data}
	req.ContentLength = int64(len(data))
	req.TransferEncoding = nil // received whole: sent on with its length
	return charged, true
}

// charge takes n bytes of the bodies' bound, unless that would pass it.
func (l *InFlight) charge(n int64) bool {
	if l.held.Add(n) > l.bodies {
		l.held.Add(-n)
		return false
	}
	return true
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
