package bus

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/platform/db"
)

// notifyChannel is the LISTEN/NOTIFY channel; publishes send their topics
// on it (notify.go).
const notifyChannel = "modshop_bus"

// replayChannel carries the ids of dead letters whose replay one process
// asks of the process that runs their handler (Replay).
const replayChannel = "modshop_bus_replay"

// wakeups fans NOTIFY messages out to the subscribers of each topic.
type wakeups struct {
	mu     sync.Mutex
	topics map[string][]chan struct{}
	closed chan struct{}
	// replay is called for a replay that another process asks for
	// (replayChannel); it must not block.
	replay func(id int64)
}

func newWakeups() *wakeups {
	return &wakeups{topics: map[string][]chan struct{}{}, closed: make(chan struct{})}
}

// channel returns a new wake-up channel for one subscriber of topic. It
// holds at most one pending wake-up, so none is lost while the subscriber
// is busy querying.
func (w *wakeups) channel(topic string) chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	w.topics[topic] = append(w.topics[topic], ch)
	w.mu.Unlock()
	return ch
}

func (w *wakeups) wake(topic string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ch := range w.topics[topic] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (w *wakeups) wakeAll() {
	w.mu.Lock()
	topics := make([]string, 0, len(w.topics))
	for t := range w.topics {
		topics = append(topics, t)
	}
	w.mu.Unlock()
	for _, t := range topics {
		w.wake(t)
	}
}

// listen holds one connection that LISTENs for publishes until ctx ends,
// reconnecting after failures. After a reconnect every subscriber polls
// once, in case a wake-up was missed meanwhile.
func (w *wakeups) listen(ctx context.Context, url, origin string, log *slog.Logger, outage *db.Outage) {
	for ctx.Err() == nil {
		err := w.listenOnce(ctx, url, origin, outage)
		if ctx.Err() != nil {
			return
		}
		if !outage.Failed(err) {
			log.Warn("bus wake-up listener lost its connection; reconnecting", "err", err)
		}
		w.wakeAll()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (w *wakeups) listenOnce(ctx context.Context, url, origin string, outage *db.Outage) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel+"; LISTEN "+replayChannel); err != nil {
		return err
	}
	outage.Recovered()
	w.wakeAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == replayChannel {
			if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && w.replay != nil {
				w.replay(id)
			}
			continue
		}
		topic, from := parsePayload(n.Payload)
		if from != origin || origin == "" { // this process woke its own subscribers already
			w.wake(topic)
		}
	}
}

// backoff is the subscriber's BackoffManager: instead of sleeping a fixed
// poll interval after an empty poll, it waits for a wake-up (or a slow
// safety poll). After a wake-up that found nothing, it keeps looking soon:
// a message can be committed but still invisible while an older transaction
// elsewhere on the cluster is open (the subscriber reads only rows older
// than every running transaction), and that transaction's end sends no
// wake-up. It re-polls after 2, 10, 50 and then every 250 ms until it finds
// messages or SafetyPoll has passed since the wake-up.
type backoff struct {
	wake       chan struct{}
	closed     <-chan struct{}
	safety     time.Duration
	retryAfter time.Duration
	// polled is raised at every poll: the subscriber runs, and its group
	// is marked seen at the next heartbeat (retention.go).
	polled *atomic.Bool
	// retry is the group's transient failures: the pauses after them, and
	// their record in bus.consumer_groups. outage logs the database going
	// away and coming back (shared by all subscribers).
	retry  *groupRetry
	outage *db.Outage
	// more, when set, tells in one autocommit statement whether the group
	// has a message to read (moreToRead): after a batch, and at a quick
	// re-poll, it stands in for a poll (a transaction of three round
	// trips) that would find nothing.
	more func(context.Context) (bool, error)

	mu       sync.Mutex
	wokenAt  time.Time // zero: not chasing a wake-up
	repolled int
}

var quickRepolls = []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, 250 * time.Millisecond}

func (b *backoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if b.polled != nil {
		b.polled.Store(true)
	}
	if err != nil {
		select {
		case <-b.closed:
			// Shutting down: the error is most likely the shutdown itself,
			// which the bus's logger puts at Debug; any other stays an error.
			logger.Error("bus subscriber query failed", err, nil)
			return 0
		default:
		}
		if errors.Is(err, context.Canceled) {
			return 0
		}
		if errors.Is(err, errRetryLater) {
			// A handler failed transiently and ended the batch
			// (endForRetry); the group pauses here, with no transaction
			// open, then reads again from its offset.
			if b.retry != nil {
				b.retry.store(context.Background())
				logger.Debug("bus subscriber pauses after a transient failure", watermill.LogFields{"err": err.Error()})
				return b.retry.pause()
			}
			return b.retryAfter
		}
		if code := db.SQLState(err); code == "40001" || code == "40P01" {
			// Another subscriber of the group won this round; try again.
			logger.Debug("bus subscriber lost a serialization race; retrying", watermill.LogFields{"err": err.Error()})
			return 10 * time.Millisecond
		}
		if b.outage != nil && b.outage.Failed(err) {
			// The database is away: logged once for all subscribers; each
			// pauses as after a handler's transient failure.
			if b.retry != nil {
				return b.retry.pause()
			}
			return b.retryAfter
		}
		logger.Error("bus subscriber query failed", err, nil)
		return b.retryAfter
	}
	if b.outage != nil {
		b.outage.Recovered()
	}
	if b.retry != nil {
		// The batch committed its offset, past the message that failed
		// (or there was nothing to read): the next transient failure
		// starts from the shortest pause, and the retry state on the bus
		// page is cleared. A read that found the group's turn taken by
		// another process is no recovery (idle).
		if noMsg {
			b.retry.idle()
		} else {
			b.retry.succeeded()
			b.retry.store(context.Background())
		}
	}
	if !noMsg {
		b.mu.Lock()
		b.wokenAt = time.Time{}
		b.mu.Unlock()
		if b.more == nil {
			return 0 // there may be more
		}
		// There may be more. A wake-up that came during the batch
		// announces a message the batch did not read (most likely): poll
		// now, chasing it with the quick re-polls should the poll not
		// see it yet, as after any wake-up. Without one, ask in one
		// statement instead of polling: the answer is mostly no (a
		// message that came one at a time), and yes for a message that
		// an older transaction hid from the batch and that no wake-up
		// will announce again.
		select {
		case <-b.wake:
			b.mu.Lock()
			b.wokenAt, b.repolled = time.Now(), 0
			b.mu.Unlock()
			return 0
		default:
		}
		if more, err := b.more(context.Background()); err != nil || more {
			return 0 // a poll reads it (or reports the error)
		}
	}
	// Wait here rather than return a duration: watermill would sleep it
	// out deaf to wake-ups, and a wake-up that arrived meanwhile would
	// start a needless chase later.
	for {
		b.mu.Lock()
		wait, quick := b.safety, false
		if !b.wokenAt.IsZero() && time.Since(b.wokenAt) < b.safety {
			wait, quick = quickRepolls[min(b.repolled, len(quickRepolls)-1)], true
			b.repolled++
		} else {
			b.wokenAt = time.Time{}
		}
		b.mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-b.wake:
			timer.Stop()
			b.mu.Lock()
			b.wokenAt, b.repolled = time.Now(), 0
			b.mu.Unlock()
			return 0
		case <-b.closed:
			timer.Stop()
			return 0
		case <-timer.C:
		}
		// A quick re-poll that would find nothing is one statement, not
		// a poll; the safety poll is always a poll (it also tells the
		// retry state and the heartbeat that the group runs).
		if !quick || b.more == nil {
			return 0
		}
		if more, err := b.more(context.Background()); err != nil || more {
			return 0
		}
	}
}

// moreToRead returns the question backoff.more asks for group on topic:
// is there a message after the group's position that its next poll would
// read? It has the poll's own conditions (watermill-sql's select query
// with the offsets adapter's position), visibility below every running
// transaction included, so it answers no exactly when a poll would find
// nothing; it takes no lock and holds no transaction.
func moreToRead(pool *sql.DB, topic, group string) func(context.Context) (bool, error) {
	query := `SELECT EXISTS (
		SELECT 1 FROM ` + offsetsTable(topic) + ` o, ` + messagesTable(topic) + ` m
		 WHERE o.consumer_group = $1
		   AND ((m.transaction_id = o.last_processed_transaction_id AND m."offset" > o.offset_acked)
		        OR m.transaction_id > o.last_processed_transaction_id)
		   AND m.transaction_id < pg_snapshot_xmin(pg_current_snapshot()))`
	return func(ctx context.Context) (more bool, err error) {
		err = pool.QueryRowContext(ctx, query, group).Scan(&more)
		return more, err
	}
}
