package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// ThrottleConfig bounds log-in attempts. Each limit is a bucket of Burst
// attempts refilled evenly over Window.
type ThrottleConfig struct {
	// PerAccount counts failed log-ins against one account.
	PerAccountBurst int
	// PerClient counts every log-in from one client address.
	PerClientBurst int
	Window         time.Duration
}

// DefaultThrottle: 5 failures per account and 30 attempts per client
// address in 15 minutes.
var DefaultThrottle = ThrottleConfig{PerAccountBurst: 5, PerClientBurst: 30, Window: 15 * time.Minute}

// RegisterThrottleConfig bounds registrations from one client address: a
// bucket of PerClientBurst refilled evenly over Window.
type RegisterThrottleConfig struct {
	PerClientBurst int
	Window         time.Duration
}

// DefaultRegisterThrottle: 10 registrations per client address per hour.
var DefaultRegisterThrottle = RegisterThrottleConfig{PerClientBurst: 10, Window: time.Hour}

// Every pruneEvery attempts a process deletes up to pruneBatch rows that
// have refilled. An attempt adds at most one row, so pruning outpaces
// growth: the table holds little more than the keys seen within a window.
const (
	pruneEvery = 256
	pruneBatch = 1024
)

// throttle is one kind of limit (log-ins per client, say) in the table:
// its keys carry its name, so kinds never share a bucket. A name has
// neither a colon nor a slash (see key).
type throttle struct {
	table  *throttleTable
	name   string
	burst  int
	window time.Duration
}

func (t *throttleTable) throttle(name string, burst int, window time.Duration) *throttle {
	return &throttle{table: t, name: name, burst: max(burst, 1), window: window}
}

// step is how long the bucket takes to get one attempt back.
func (t *throttle) step() time.Duration { return t.window / time.Duration(t.burst) }

// take spends one attempt from key's bucket when one is left, in one
// statement, so concurrent attempts (from any process) cannot all pass a
// check before any of them spends. Otherwise it spends nothing and reports
// how long to wait, rounded up to whole seconds (never 0 while blocked).
func (t *throttle) take(ctx context.Context, key string) (time.Duration, error) {
	b, err := t.table.spend(ctx, t.key(key), t.step(), t.window)
	if err != nil {
		return 0, fmt.Errorf("throttle %s: %w", t.name, err)
	}
	if n := t.table.takes.Add(1); n%pruneEvery == 0 {
		if err := t.table.prune(ctx); err != nil {
			return 0, err
		}
	}
	if b.Granted {
		return 0, nil
	}
	// The next attempt is allowed once full_at + step - window has come.
	wait := b.FullAt.Add(t.step() - t.window).Sub(b.TouchedAt)
	return max(time.Second, (wait + time.Second - 1).Truncate(time.Second)), nil
}

// refund gives back the attempt take spent, for an attempt that was
// turned away before anything was checked (no capacity to hash).
func (t *throttle) refund(ctx context.Context, key string) error {
	if err := t.table.giveBack(ctx, t.key(key), t.step()); err != nil {
		return fmt.Errorf("throttle %s: refund: %w", t.name, err)
	}
	return nil
}

// forget clears key, as after a successful log-in.
func (t *throttle) forget(ctx context.Context, key string) error {
	if err := t.table.clear(ctx, t.key(key)); err != nil {
		return fmt.Errorf("throttle %s: forget: %w", t.name, err)
	}
	return nil
}

// key is the row's key: the throttle's name, a slash and the SHA-256 of
// the name and the caller's key, so that what was typed (a log-in name,
// often a password in the wrong field) and where from are not kept in the
// clear, and every key fits the column (200 bytes). Keys used to be the
// name, a colon and the caller's key as given: no such row can equal a key
// of this form, so rows left from then are never read; they are pruned
// once refilled, as any.
func (t *throttle) key(key string) string {
	sum := sha256.Sum256([]byte(t.name + ":" + key))
	return t.name + "/" + hex.EncodeToString(sum[:])
}
