package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/telemetry"
)

// probeTTL is how long a readiness result is reused: /readyz answers
// anyone, however many requests are in flight, so the checks behind it
// (queries, calls to other processes) run at most about once a second
// whatever the callers do.
const probeTTL = time.Second

// probeTimeout bounds one run of the checks.
const probeTimeout = 3 * time.Second

// recentProbe runs a check at most once per ttl: a caller gets the last
// result while it is fresh, or waits for the run in progress (one at a
// time, whatever the callers), until its own context ends. The run does
// not depend on any caller's context, so a caller that goes away does not
// leave a cancelled result for the others.
type recentProbe[T any] struct {
	ttl     time.Duration
	timeout time.Duration
	check   func(context.Context) T

	mu      sync.Mutex
	at      time.Time // when the last result came; zero: none yet
	last    T
	running chan struct{} // closed when the run in progress ends; nil: none
}

func newRecentProbe[T any](check func(context.Context) T) *recentProbe[T] {
	return &recentProbe[T]{ttl: probeTTL, timeout: probeTimeout, check: check}
}

// result is the last result when it is fresh, or that of a new run.
func (p *recentProbe[T]) result(ctx context.Context) (T, error) {
	p.mu.Lock()
	if p.running == nil && !p.at.IsZero() && time.Since(p.at) < p.ttl {
		defer p.mu.Unlock()
		return p.last, nil
	}
	if p.running == nil {
		p.running = make(chan struct{})
		go p.run(p.running)
	}
	running := p.running
	p.mu.Unlock()
	select {
	case <-running:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, nil
}

func (p *recentProbe[T]) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	v := p.check(ctx)
	p.mu.Lock()
	p.last, p.at, p.running = v, time.Now(), nil
	p.mu.Unlock()
	close(done)
}

// notReadyDetail is the detail of a /readyz answer that is not ready. It
// names the part that failed (the broker) without the details, which name
// hosts and users and go to the log (readiness.observe).
func notReadyDetail(err error) string {
	if errors.Is(err, bus.ErrBrokerDown) {
		return "not ready: the message broker does not answer"
	}
	return "not ready"
}

// readyChecks are the checks a ready /readyz lists.
func (s *Shop) readyChecks() gin.H {
	checks := gin.H{"database": "ok", "migrations": "ok"}
	if s.stack.cfg.BusTransport == bus.TransportRabbitMQ {
		checks["broker"] = "ok"
	}
	return checks
}

// processName is the name this process reports itself by (bus overview
// and dead letters, merged by the gateway): its service name, from the
// modules it runs (telemetry.ServiceName; OTEL_SERVICE_NAME does not
// change it, so that each process of a split shop keeps a name of its own).
func (s *stack) processName() string {
	names := make([]string, 0, len(s.local))
	for _, m := range s.local {
		names = append(names, m.Name)
	}
	return telemetry.ServiceName(names, len(s.local) == len(s.all))
}

// publishedEvents are the events this process's own modules publish: its
// bus metrics count those topics alone, so that summing them over the
// processes of a split shop counts each message once.
func (s *stack) publishedEvents() []string {
	own := bus.NewRegistry()
	for _, m := range s.local {
		if m.RegisterEvents != nil {
			m.RegisterEvents(own)
		}
	}
	return append([]string{}, own.Names()...) // never nil: nil means every event
}
