package db

import (
	"log/slog"
	"sync"
	"time"
)

// Outage logs a database outage as a loop sees it: once at WARN when it
// starts and once at INFO when it ends, instead of an error at every
// attempt in between (a 30 s outage made hundreds of ERROR lines that
// said the same thing). The zero value needs Log; it is safe for
// concurrent use, so several goroutines of one component may share one.
type Outage struct {
	Log *slog.Logger
	// What names the component in the log lines ("bus subscribers").
	What string

	mu       sync.Mutex
	since    time.Time // zero: no outage going on
	failures int
}

// Failed reports whether err means the database is unavailable
// (IsUnavailable). If so it logs the start of an outage, once, and the
// caller should not log err itself; otherwise the caller handles err as
// it would anyway. A nil *Outage reports false: the caller logs everything.
func (o *Outage) Failed(err error) bool {
	if o == nil || !IsUnavailable(err) {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.failures++
	if o.since.IsZero() {
		o.since = time.Now()
		o.Log.Warn(o.What+": the database is unavailable; retrying until it is back", "err", err)
	}
	return true
}

// Recovered logs the end of an outage, if one was going on: the caller's
// work reached the database again.
func (o *Outage) Recovered() {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	o.Log.Info(o.What+": the database is available again", "down_for", time.Since(o.since).Round(time.Millisecond), "failed_attempts", o.failures)
	o.since, o.failures = time.Time{}, 0
}

// Down reports whether an outage is going on.
func (o *Outage) Down() bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.since.IsZero()
}
