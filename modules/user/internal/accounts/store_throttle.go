package accounts

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

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

// bucket is a throttle bucket as an attempt left it.
type bucket struct {
	Granted   bool // the attempt was allowed
	FullAt    time.Time
	TouchedAt time.Time // the attempt's time
}

// spend spends one attempt from the bucket key, refilled every step
// within window, when one is left, in one statement, so concurrent
// attempts (from any process) cannot all pass a check before any of them
// spends. Otherwise it spends nothing. Either way it returns the bucket.
func (t *throttleTable) spend(ctx context.Context, key string, step, window time.Duration) (bucket, error) {
	var b bucket
	err := t.db.WithContext(ctx).Raw(`
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
		RETURNING granted, full_at, touched_at`, t.args(key, step, window)).Scan(&b).Error
	return b, err
}

// giveBack returns one attempt, refilled every step, to the bucket key.
func (t *throttleTable) giveBack(ctx context.Context, key string, step time.Duration) error {
	return t.db.WithContext(ctx).Exec(
		`UPDATE throttle_buckets SET full_at = full_at - CAST(@step_us AS bigint) * interval '1 microsecond' WHERE key = @key`,
		t.args(key, step, 0)).Error
}

// clear deletes the bucket key: it is full again.
func (t *throttleTable) clear(ctx context.Context, key string) error {
	return t.db.WithContext(ctx).Exec(`DELETE FROM throttle_buckets WHERE key = ?`, key).Error
}

// args are the named parameters of the statements on the bucket key.
func (t *throttleTable) args(key string, step, window time.Duration) map[string]any {
	return map[string]any{
		"key":       key,
		"now":       t.clock(),
		"step_us":   step.Microseconds(),
		"window_us": window.Microseconds(),
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
