package accounts

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/config"
)

// HashConfig bounds password hashing: every argon2id hash or check takes
// 19 MiB for its duration, so hashes in flight are memory in use.
type HashConfig struct {
	// Slots is how many hashes may run at once; 0 sizes it from memory
	// (DefaultHashSlots).
	Slots int
	// Wait is how long a request waits for a slot before it is answered
	// 503 with Retry-After (default DefaultHashWait).
	Wait time.Duration
}

// DefaultHashWait is how long a request waits for a hashing slot by
// default: a few hashes' time on a busy machine, short enough that a
// client is told to come back rather than left hanging.
const DefaultHashWait = 3 * time.Second

// hashBytes is what one hash allocates.
const hashBytes = argonMemoryKiB * 1024

// hashMemoryShare is the part of the process's memory that hashes in
// flight may take: a quarter, leaving the rest to everything else (and,
// with the embedded database, to PostgreSQL beside it).
const hashMemoryShare = 4

// DefaultHashSlots sizes the bound from memory: a quarter of the memory
// this process may use (the least of GOMEMLIMIT, its cgroup's limit and
// physical memory) divided by the 19 MiB a hash takes, at most two per
// GOMAXPROCS (hashing is CPU-bound: more at once only queues inside the
// scheduler, holding memory) and at least one. It also says how it got there.
func DefaultHashSlots() (slots int, why string) {
	mem, source := config.ProcessMemory()
	procs := runtime.GOMAXPROCS(0)
	slots = sizeHashSlots(mem, procs)
	if mem == 0 {
		return slots, fmt.Sprintf("2 per GOMAXPROCS (%d); memory unknown", procs)
	}
	return slots, fmt.Sprintf("a quarter of %d MiB (%s) at 19 MiB a hash, at most 2 per GOMAXPROCS (%d)", mem>>20, source, procs)
}

// sizeHashSlots is DefaultHashSlots's arithmetic; memory 0 is unknown.
func sizeHashSlots(memory uint64, procs int) int {
	limit := 2 * max(procs, 1)
	if memory == 0 {
		return limit
	}
	return int(max(1, min(uint64(limit), memory/hashMemoryShare/hashBytes))) // #nosec G115 -- at most limit, an int
}

// hashGate lets at most cap(slots) password hashes run at once. A request
// that finds every slot taken waits up to wait for one, then is refused
// with busy (unavailable: a 503 with Retry-After): memory stays bounded
// whatever arrives, and no request hangs.
type hashGate struct {
	slots   chan struct{}
	wait    time.Duration
	busy    *apperr.Error
	metrics hashMetrics
	// hold, when set (tests), runs while a slot is held, before the hash.
	hold func()
}

func newHashGate(cfg HashConfig) *hashGate {
	if cfg.Slots <= 0 {
		cfg.Slots, _ = DefaultHashSlots()
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultHashWait
	}
	busy := apperr.Unavailable("busy", "the server is busy checking other passwords; try again shortly",
		max(time.Second, (cfg.Wait+time.Second-1).Truncate(time.Second)))
	g := &hashGate{slots: make(chan struct{}, cfg.Slots), wait: cfg.Wait, busy: busy, metrics: newHashMetrics()}
	g.metrics.slots.Set(float64(cfg.Slots))
	return g
}

// errHashNotRun is what a request that stopped waiting for a slot gets.
var errHashNotRun = errors.New("password not hashed: the request ended while it waited for a hashing slot")

// notRun reports whether err means the hash never ran: refused for
// capacity, or its request ended while it waited.
func (g *hashGate) notRun(err error) bool {
	return errors.Is(err, g.busy) || errors.Is(err, errHashNotRun)
}

// acquire takes a slot, waiting up to g.wait; release gives it back.
func (g *hashGate) acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.slots <- struct{}{}:
	default:
		g.metrics.waits.Inc()
		timer := time.NewTimer(g.wait)
		defer timer.Stop()
		select {
		case g.slots <- struct{}{}:
		case <-timer.C:
			g.metrics.refusals.Inc()
			return nil, g.busy
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", errHashNotRun, ctx.Err())
		}
	}
	g.metrics.inFlight.Inc()
	return func() {
		g.metrics.inFlight.Dec()
		<-g.slots
	}, nil
}

// run calls fn holding a slot.
func (g *hashGate) run(ctx context.Context, fn func()) error {
	release, err := g.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	if g.hold != nil {
		g.hold()
	}
	g.metrics.hashes.Inc()
	fn()
	return nil
}

// hash is HashPassword in a slot.
func (g *hashGate) hash(ctx context.Context, password string) (hash string, err error) {
	if gerr := g.run(ctx, func() { hash, err = HashPassword(password) }); gerr != nil {
		return "", gerr
	}
	return hash, err
}

// verify is VerifyPassword in a slot.
func (g *hashGate) verify(ctx context.Context, password, encoded string) (ok bool, err error) {
	if gerr := g.run(ctx, func() { ok, err = VerifyPassword(password, encoded) }); gerr != nil {
		return false, gerr
	}
	return ok, err
}

// hashMetrics shows the gate on /metrics.
type hashMetrics struct {
	slots, inFlight         prometheus.Gauge
	hashes, waits, refusals prometheus.Counter
}

func newHashMetrics() hashMetrics {
	return hashMetrics{
		slots: prometheus.NewGauge(prometheus.GaugeOpts{Name: "modshop_password_hash_slots",
			Help: "Password hashes (argon2id, 19 MiB each) allowed to run at once."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "modshop_password_hashes_in_flight",
			Help: "Password hashes running now."}),
		hashes: prometheus.NewCounter(prometheus.CounterOpts{Name: "modshop_password_hashes_total",
			Help: "Password hashes computed (registrations and log-ins)."}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{Name: "modshop_password_hash_waits_total",
			Help: "Requests that found every hashing slot taken and waited."}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{Name: "modshop_password_hash_refusals_total",
			Help: "Requests answered 503 because no hashing slot came free in time."}),
	}
}

func (m hashMetrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.slots, m.inFlight, m.hashes, m.waits, m.refusals} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register password hashing metrics: %w", err)
		}
	}
	return nil
}
