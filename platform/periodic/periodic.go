// Package periodic runs a module's sweeps: work that finds and fixes rows
// left behind (overdue orders, expired reservations) every so often.
package periodic

import (
	"context"
	"log/slog"
	"time"

	"github.com/modshop/modshop/platform/db"
)

// Sweep calls fn every interval until ctx ends. fn returns how many rows
// it changed; failures are logged (unless ctx has ended) and the next tick
// tries again. what names the work in the log ("cancel overdue orders").
// The database being away (db.IsUnavailable) is logged once at WARN when
// it starts and once at INFO when a sweep works again, not at every tick.
func Sweep(ctx context.Context, interval time.Duration, log *slog.Logger, what string, fn func(context.Context) (int, error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	outage := &db.Outage{Log: log, What: what}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := fn(ctx)
		switch {
		case err == nil:
			outage.Recovered()
		case ctx.Err() != nil, outage.Failed(err):
		default:
			log.Error(what+" failed", "err", err)
		}
		if n > 0 {
			log.Info(what, "count", n)
		}
	}
}
