//go:build chaos

package bus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// This file exists only in the chaos suite's build of the shop (go build
// -tags chaos; app/chaos). It lets the suite make handlers fail the way
// they fail in production, without touching them:
//
//	MODSHOP_CHAOS_TRANSIENT=0.10  a tenth of the messages a handler gets
//	                              meet a serialization failure (SQLSTATE
//	                              40001), which the bus must treat as
//	                              transient; drawn once per message and
//	                              handler, at its first run
//	MODSHOP_CHAOS_TRANSIENT_RUNS=4
//	                              such a message fails that many runs in a
//	                              row (default 1: a blip), then never
//	                              again; a database that stays away a
//	                              while fails every run until it is back
//	MODSHOP_CHAOS_PANIC=0.02      a fiftieth of handler runs panic, which
//	                              the bus recovers as a permanent failure
//	                              (attempts counted)
//	MODSHOP_CHAOS_SLOW=payment.charge=200ms[,handler=duration...]
//	                              these handlers take that long per message
//
// The settings are read once, at the first message.

// chaosSettings are the faults the environment asks for.
type chaosSettings struct {
	transient     float64
	transientRuns int
	panics        float64
	slow          map[string]time.Duration
}

var (
	chaosOnce   sync.Once
	chaosConfig chaosSettings
	chaosErr    error

	// chaosFailing counts, per handler and message, the transient
	// failures still to come (0: none, or it has had them all). Each
	// message is drawn once, however often it runs: a batch re-read after
	// a transient failure runs its messages again, those already applied
	// included (in a batch the inbox is asked with the handler's first
	// statement), and drawing again at each run would keep a busy group
	// from ever getting through a batch. One entry per message and
	// handler: a test run's few thousand.
	chaosMu      sync.Mutex
	chaosFailing = map[string]int{}
)

// injectFault runs before every handler run (runHandler): it sleeps for a
// slowed handler, then fails or panics at the configured rates. A setting
// that does not parse fails every run, loudly, rather than testing nothing.
func injectFault(ctx context.Context, handler, messageID string) error {
	chaosOnce.Do(func() { chaosConfig, chaosErr = chaosFromEnv() })
	if chaosErr != nil {
		return chaosErr
	}
	if d := chaosConfig.slow[handler]; d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if chaosTransient(handler, messageID) {
		return fmt.Errorf("chaos: injected transient fault in %s: %w", handler,
			&pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access (injected by the chaos build)"})
	}
	// #nosec G404 -- fault injection in a test build: no secret
	if rand.Float64() < chaosConfig.panics {
		panic(fmt.Sprintf("chaos: injected panic in %s", handler))
	}
	return nil
}

// chaosTransient decides whether this run of the handler on the message
// fails transiently: a message drawn at the transient rate (once, at its
// first run) fails its first transientRuns runs.
func chaosTransient(handler, messageID string) bool {
	key := handler + " " + messageID
	chaosMu.Lock()
	defer chaosMu.Unlock()
	left, drawn := chaosFailing[key]
	// #nosec G404 -- fault injection in a test build: no secret
	if !drawn && rand.Float64() < chaosConfig.transient {
		left = chaosConfig.transientRuns
	}
	if left == 0 {
		chaosFailing[key] = 0
		return false
	}
	chaosFailing[key] = left - 1
	return true
}

// chaosFromEnv reads the MODSHOP_CHAOS_* settings.
func chaosFromEnv() (chaosSettings, error) {
	s := chaosSettings{transientRuns: 1, slow: map[string]time.Duration{}}
	rate := func(name string) (float64, error) {
		v := os.Getenv(name)
		if v == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 1 {
			return 0, fmt.Errorf("chaos: %s=%q: want a rate from 0 to 1", name, v)
		}
		return f, nil
	}
	var err error
	if s.transient, err = rate("MODSHOP_CHAOS_TRANSIENT"); err != nil {
		return s, err
	}
	if s.panics, err = rate("MODSHOP_CHAOS_PANIC"); err != nil {
		return s, err
	}
	if v := os.Getenv("MODSHOP_CHAOS_TRANSIENT_RUNS"); v != "" {
		if s.transientRuns, err = strconv.Atoi(v); err != nil || s.transientRuns < 1 {
			return s, fmt.Errorf("chaos: MODSHOP_CHAOS_TRANSIENT_RUNS=%q: want a count of at least 1", v)
		}
	}
	for _, item := range strings.Split(os.Getenv("MODSHOP_CHAOS_SLOW"), ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		name, d, ok := strings.Cut(item, "=")
		dur, err := time.ParseDuration(d)
		if !ok || err != nil || dur < 0 {
			return s, fmt.Errorf("chaos: MODSHOP_CHAOS_SLOW item %q: want handler=duration", item)
		}
		s.slow[strings.TrimSpace(name)] = dur
	}
	return s, nil
}
