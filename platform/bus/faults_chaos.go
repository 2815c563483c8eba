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
//	MODSHOP_CHAOS_TRANSIENT=0.10  a tenth of handler runs fail with a
//	                              serialization failure (SQLSTATE 40001),
//	                              which the bus must treat as transient
//	MODSHOP_CHAOS_PANIC=0.02      a fiftieth panic, which the bus recovers
//	                              as a permanent failure (attempts counted)
//	MODSHOP_CHAOS_SLOW=payment.charge=200ms[,handler=duration...]
//	                              these handlers take that long per message
//
// The settings are read once, at the first message.

// chaosSettings are the faults the environment asks for.
type chaosSettings struct {
	transient float64
	panics    float64
	slow      map[string]time.Duration
}

var (
	chaosOnce   sync.Once
	chaosConfig chaosSettings
	chaosErr    error
)

// injectFault runs before every handler run (runHandler): it sleeps for a
// slowed handler, then fails or panics at the configured rates. A setting
// that does not parse fails every run, loudly, rather than testing nothing.
func injectFault(ctx context.Context, handler string) error {
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
	// #nosec G404 -- fault injection in a test build: no secret
	roll := rand.Float64()
	switch {
	case roll < chaosConfig.panics:
		panic(fmt.Sprintf("chaos: injected panic in %s", handler))
	case roll < chaosConfig.panics+chaosConfig.transient:
		return fmt.Errorf("chaos: injected transient fault in %s: %w", handler,
			&pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access (injected by the chaos build)"})
	}
	return nil
}

// chaosFromEnv reads the MODSHOP_CHAOS_* settings.
func chaosFromEnv() (chaosSettings, error) {
	s := chaosSettings{slow: map[string]time.Duration{}}
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
