package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/modshop/modshop/platform/db"
)

// errRetryLater is how a batch ended by a transient failure answers the
// subscriber's offset write: the write fails, so the subscriber's query
// fails with it, and the group's backoff (HandleError) pauses before the
// group reads again from the offset it had.
var errRetryLater = errors.New("bus: a handler failed transiently; the group reads again from its offset after a pause")

// groupRetry is a consumer group's state while it retries a transient
// failure, in this process: how long it pauses next (capped exponential,
// with jitter, reset by the group's next success) and what the bus page
// shows (since when, the last error, how many retries), kept in
// bus.consumer_groups so that every process's page sees it.
type groupRetry struct {
	bus          *Bus
	topic, group string

	mu      sync.Mutex
	since   time.Time // zero: not retrying
	retries int64
	lastErr string
	next    time.Duration // the next pause before jitter; zero: the first
	// stored: the row in bus.consumer_groups may show the group retrying,
	// so a success must clear it.
	stored bool
	// first is the failure that started the run, logged by store once it
	// knows whose failure it is (told).
	first error
	told  bool
	// warned: the run was logged at WARN, so its end is logged at INFO.
	warned bool
}

func (b *Bus) newGroupRetry(topic, group string) *groupRetry {
	return &groupRetry{bus: b, topic: topic, group: group}
}

// failed records a transient failure of the group's handler (ctx: the
// handler's, for the log line). The first of
// a run is part of the database's outage if it lost its connection (the
// bus logs that once for all its groups); else it is logged by store, at
// the pause after it (see there). The rest only at DEBUG, with their
// count shown on the bus page and in the metrics.
func (r *groupRetry) failed(ctx context.Context, err error) {
	outage := connectionLost(err) && r.bus.outage.Failed(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.retries++
	r.lastErr = truncateError(err)
	if r.since.IsZero() {
		r.since, r.first, r.told = time.Now(), err, outage
		return
	}
	r.bus.log.DebugContext(ctx, "bus: handler failed transiently again", "handler", r.group, "retries", r.retries, "err", err)
}

// pause returns how long the group waits before it reads again: the
// backoff doubles from TransientBackoff up to TransientBackoffMax, and a
// random part (up to half) keeps the groups of many processes from coming
// back all at once.
func (r *groupRetry) pause() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg := r.bus.cfg
	w := r.next
	if w <= 0 {
		w = cfg.TransientBackoff
	}
	r.next = min(w*2, cfg.TransientBackoffMax)
	return w/2 + rand.N(w/2+1)
}

// succeeded ends a run of transient failures: the group applied a message
// or read without failing. It resets the backoff and logs the recovery.
func (r *groupRetry) succeeded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = 0
	if r.since.IsZero() {
		return
	}
	level := slog.LevelDebug
	if r.warned {
		level = slog.LevelInfo
	}
	r.bus.log.Log(context.Background(), level, "bus: handler recovered from transient failures", "handler", r.group,
		"retries", r.retries, "retrying_for", time.Since(r.since).Round(time.Millisecond))
	r.since, r.retries, r.lastErr, r.first, r.told, r.warned = time.Time{}, 0, "", nil, false, false
}

// idle records a read of the group that found nothing. That ends a run
// of transient failures (the message that failed was applied, and nothing
// is left), unless the read found nothing because another process of the
// group (a replica) has its turn: a read that finds the group's advisory
// lock taken reads nothing either (offsetsLockedByAdvisoryLock). That
// process may be failing on the same message; taken for a recovery, the
// read would log one (INFO, then a WARN at this process's next failure)
// and clear the group's row on the bus page while the group still
// retries. So during a run, idle looks whether the lock is held (in
// pg_locks, without taking it: taking it, even for a moment, could make
// the other process read nothing) and ends the run only if it is not.
func (r *groupRetry) idle() {
	r.mu.Lock()
	running := !r.since.IsZero()
	r.mu.Unlock()
	if running {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var held bool
		// A 64-bit advisory key is classid (high half) and objid (low
		// half), objsubid 1.
		err := r.bus.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
			 WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			   AND ((classid::int8 << 32) | objid::int8) = hashtextextended($1, 0))`, advisoryKey(r.topic, r.group)).Scan(&held)
		if err != nil || held {
			return // not known to be over: the next read tells
		}
	}
	r.succeeded()
	r.store(context.Background())
}

// progressed records that the group applied a message in its batch. The
// run of failures goes on until the batch's offset is written (succeeded:
// the bus page keeps showing it, and its end is logged once), but the next
// transient failure pauses the shortest time again: failures scattered
// over a batch (one message in ten) are a series of blips, each after
// progress. Were the pause to keep doubling until a whole batch passes,
// such a group would wait seconds between messages.
func (r *groupRetry) progressed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = 0
}

// store writes the group's retry state to bus.consumer_groups, or clears
// it there once the group has recovered. Best effort: the database may be
// what is failing; it is written at the first pause that reaches it, and
// a clear that fails is tried again at the next one. It runs outside any
// transaction (the subscriber calls it between queries). logCtx is what
// its log lines are logged with (a handler's, for its trace ids).
//
// Unless the run began with a lost connection (failed), the write also
// tells whose failure it is, and so how its start is logged. The bus's
// database away (the write fails so): the bus's outage, logged once for
// all its groups and loops (db.Outage). Otherwise the group's own (a
// statement or a remote call that timed out, a lost race): one WARN
// naming the handler, INFO at its end. Counted as the bus's outage, such a failure would be ended by
// every success elsewhere (another group's poll, the heartbeat) and
// started again by the next pause: a WARN and an INFO about the database
// at every pause, none naming the handler.
func (r *groupRetry) store(logCtx context.Context) {
	r.mu.Lock()
	since, retries, lastErr, stored := r.since, r.retries, r.lastErr, r.stored
	r.mu.Unlock()
	if since.IsZero() && !stored {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var err error
	if since.IsZero() {
		_, err = r.bus.db.ExecContext(ctx, `UPDATE consumer_groups SET retrying_since = NULL, last_error = NULL, retries = 0
			 WHERE topic = $1 AND consumer_group = $2`, r.topic, r.group)
	} else {
		_, err = r.bus.db.ExecContext(ctx, `UPDATE consumer_groups SET retrying_since = $3, last_error = $4, retries = $5
			 WHERE topic = $1 AND consumer_group = $2`, r.topic, r.group, since, lastErr, retries)
	}
	outage := err != nil && r.bus.outage.Failed(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !since.IsZero() && r.since.Equal(since) && !r.told && (err == nil || outage) {
		r.told, r.warned = true, !outage
		if r.warned {
			r.bus.log.WarnContext(logCtx, "bus: handler failed transiently; its group pauses and reads again from its offset until it succeeds",
				"handler", r.group, "err", r.first)
		}
	}
	if err != nil {
		r.bus.log.DebugContext(logCtx, "bus: could not record the group's retry state; trying again later", "handler", r.group, "err", err)
		return
	}
	// A failure or a success that came meanwhile is written next time.
	r.stored = !since.IsZero() || !r.since.IsZero()
}

// connectionLost reports a failure of the connection to the database (lost,
// refused, the server shutting down) rather than of a statement on it: a
// statement cancelled by a timeout or a call's deadline says nothing about
// the database's health.
func connectionLost(err error) bool {
	return db.IsUnavailable(err) && db.SQLState(err) != "57014" && !errors.Is(err, context.DeadlineExceeded)
}

// endForRetry ends the batch after a transient failure of one of its
// messages: what the batch applied before it commits (effects and inbox
// marks, without the offset: the group reads those messages again and
// finds them applied), the failed message's savepoint is rolled back
// already (applyInBatchOnce). The batch's later messages are not applied
// (consume skips them), its offset write fails with errRetryLater, and the
// subscriber's backoff pauses outside any transaction.
//
// Why commit rather than roll back: a transient failure that strikes one
// message in ten would roll back a batch of fifty nearly every time, and
// the group would make no progress at all; committing keeps what was done.
// A batch that parked a dead letter rolls back instead: the dead letter
// must commit with its offset (see parked), and comes again.
func (t *batchTx) endForRetry(ctx context.Context, cause error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.retryLater = cause
	if t.done {
		return // a lost connection, or an undo that failed: rolled back
	}
	if t.parked {
		t.abandon()
		return
	}
	if err := t.actAsBus(ctx); err != nil {
		return // abandoned
	}
	t.done = true
	after := t.after
	t.after, t.pending = nil, nil
	err := t.tx.Commit()
	_ = t.conn.Close()
	if err == nil {
		for _, f := range after {
			f()
		}
	}
}

// retrying returns the transient failure that ended the batch, or nil.
func (t *batchTx) retrying() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.retryLater
}

// retryLaterErr is what the subscriber's statements get once a transient
// failure ended the batch; t.mu is held.
func (t *batchTx) retryLaterErr() error {
	return fmt.Errorf("%w: %w", errRetryLater, t.retryLater)
}
