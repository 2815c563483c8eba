package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
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

// throttleTable is the users.throttle_buckets table, where every process of
// the user module keeps its throttles, so that replicas count together.
// Each row is one token bucket, stored as the time it will be full again
// (the generic cell rate algorithm): a bucket of burst b refilled over w
// gets a token back every w/b; an attempt at now is allowed when
// max(full_at, now) + w/b <= now + w, and then moves full_at to that sum.
// A row whose full_at has passed holds a full bucket, which is what a
// missing row means too: such rows are pruned.
type throttleTable struct {
	db *gorm.DB
	// now is the clock; nil uses the database's, one clock for every
	// process that shares a bucket.
	now func() time.Time
	// takes counts this process's attempts, to prune every pruneEvery.
	takes atomic.Int64
}

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
	var row struct {
		Granted   bool
		FullAt    time.Time
		TouchedAt time.Time
	}
	err := t.table.db.WithContext(ctx).Raw(`
		INSERT INTO throttle_buckets AS b (key, full_at, granted, touched_at)
		SELECT @key, p.now + CAST(@step_us AS bigint) * interval '1 microsecond', true, p.now
		  FROM (SELECT coalesce(CAST(@now AS timestamptz), statement_timestamp()) AS now) p
		ON CONFLICT (key) DO UPDATE SET
		    granted = greatest(b.full_at, excluded.touched_at) + CAST(@step_us AS bigint) * interval '1 microsecond'
		              <= excluded.touched_at + CAST(@window_us AS bigint) * interval '1 microsecond',
		    full_at = CASE WHEN greatest(b.full_at, excluded.touched_at) + CAST(@step_us AS bigint) * interval '1 microsecond'
		                        <= excluded.touched_at + CAST(@window_us AS bigint) * interval '1 microsecond'
		                   THEN greatest(b.full_at, excluded.touched_at) + CAST(@step_us AS bigint) * interval '1 microsecond'
		                   ELSE b.full_at END,
		    touched_at = excluded.touched_at
		RETURNING granted, full_at, touched_at`, t.args(key)).Scan(&row).Error
	if err != nil {
		return 0, fmt.Errorf("throttle %s: %w", t.name, err)
	}
	if n := t.table.takes.Add(1); n%pruneEvery == 0 {
		if err := t.table.prune(ctx); err != nil {
			return 0, err
		}
	}
	if row.Granted {
		return 0, nil
	}
	// The next attempt is allowed once full_at + step - window has come.
	wait := row.FullAt.Add(t.step() - t.window).Sub(row.TouchedAt)
	return max(time.Second, (wait + time.Second - 1).Truncate(time.Second)), nil
}

// refund gives back the attempt take spent, for an attempt that was
// turned away before anything was checked (no capacity to hash).
func (t *throttle) refund(ctx context.Context, key string) error {
	err := t.table.db.WithContext(ctx).Exec(
		`UPDATE throttle_buckets SET full_at = full_at - CAST(@step_us AS bigint) * interval '1 microsecond' WHERE key = @key`,
		t.args(key)).Error
	if err != nil {
		return fmt.Errorf("throttle %s: refund: %w", t.name, err)
	}
	return nil
}

// forget clears key, as after a successful log-in.
func (t *throttle) forget(ctx context.Context, key string) error {
	if err := t.table.db.WithContext(ctx).Exec(`DELETE FROM throttle_buckets WHERE key = ?`, t.key(key)).Error; err != nil {
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

func (t *throttle) args(key string) map[string]any {
	return map[string]any{
		"key":       t.key(key),
		"now":       t.table.clock(),
		"step_us":   t.step().Microseconds(),
		"window_us": t.window.Microseconds(),
	}
}

// clock is the time the statements use: nil lets the database decide.
func (t *throttleTable) clock() *time.Time {
	if t.now == nil {
		return nil
	}
	now := t.now()
	return &now
}

// prune deletes up to pruneBatch buckets that have refilled: they hold no
// information. Rows another process is updating are skipped, not waited for.
func (t *throttleTable) prune(ctx context.Context) error {
	err := t.db.WithContext(ctx).Exec(`
		DELETE FROM throttle_buckets
		 WHERE key IN (SELECT key FROM throttle_buckets
		                WHERE full_at <= coalesce(CAST(@now AS timestamptz), statement_timestamp())
		                LIMIT @batch FOR UPDATE SKIP LOCKED)`,
		map[string]any{"now": t.clock(), "batch": pruneBatch}).Error
	if err != nil {
		return fmt.Errorf("prune throttles: %w", err)
	}
	return nil
}
