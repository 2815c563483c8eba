package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// DeadLetter is a message a handler could not apply within its attempts.
type DeadLetter struct {
	ID         int64             `json:"id"`
	MessageID  string            `json:"message_id"`
	Topic      string            `json:"topic"`
	Handler    string            `json:"handler"`
	Payload    json.RawMessage   `json:"payload"`
	Metadata   map[string]string `json:"metadata"`
	Error      string            `json:"error"`
	Attempts   int               `json:"attempts"`
	FailedAt   time.Time         `json:"failed_at"`
	Replays    int               `json:"replays"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	Resolution *string           `json:"resolution"`
	// Process is the process that reported the letter (Config.Process):
	// in a merged view (the gateway's), the one to ask to replay or
	// discard it.
	Process string `json:"process,omitempty"`
}

// Errors of the dead-letter operations, for the HTTP layer to map.
var (
	ErrDeadLetterNotFound = errors.New("no such dead letter")
	ErrDiscarded          = errors.New("the dead letter was discarded")
	ErrHandlerNotHere     = errors.New("the dead letter's handler does not run in this process")
)

// ReplayError is a replay whose handler failed again.
type ReplayError struct{ Err error }

func (e *ReplayError) Error() string { return "replay failed: " + e.Err.Error() }
func (e *ReplayError) Unwrap() error { return e.Err }

// deadLetter parks msg for staff. It writes on the subscriber's own
// transaction, so the dead letter and the acknowledgement commit together:
// no second connection, and no second copy if the subscriber has to deliver
// the message again. A savepoint keeps a failed insert from aborting the
// subscriber's transaction; the message is then not acknowledged and comes
// back later.
func (b *Bus) deadLetter(ctx context.Context, h *handler, msg *message.Message, cause error, attempts int) error {
	md, err := json.Marshal(msg.Metadata)
	if err != nil {
		return fmt.Errorf("dead letter metadata: %w", err)
	}
	var payload any = string(msg.Payload)
	if !json.Valid(msg.Payload) {
		payload = nil
	}
	insert := `INSERT INTO dead_letters (message_id, topic, handler, payload, metadata, error, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	args := []any{msg.UUID, h.topic, h.name, payload, string(md), truncateError(cause), attempts}
	tx, inSubscriber := wmsql.TxFromContext(msg.Context())
	if bt, ok := tx.(*batchTx); ok && bt.ended() {
		// The subscriber stopped waiting for this message (its attempts
		// outlasted the ack deadline) and ended the batch: park it on a
		// connection of its own, or it would come back forever.
		inSubscriber = false
	}
	if inSubscriber {
		err = execInSavepoint(ctx, tx, insert, args...)
		if bt, ok := tx.(*batchTx); ok && err == nil {
			err = bt.markParked(ctx)
		}
	} else {
		_, err = b.db.ExecContext(ctx, insert, args...)
	}
	if err != nil {
		if !IsTransient(err) { // a transient failure is the caller's to retry (park)
			b.log.Error("bus: could not store dead letter; it will be delivered again", "handler", h.name, "message_id", msg.UUID, "err", err)
		}
		return fmt.Errorf("store dead letter: %w", err)
	}
	parked := func() {
		b.log.Error("bus: message dead-lettered", "handler", h.name, "message_id", msg.UUID, "attempts", attempts, "err", cause)
		b.metrics.deadLettered.WithLabelValues(h.name).Inc()
	}
	if bt, ok := tx.(*batchTx); ok && inSubscriber {
		// Counted and logged once it has committed: a batch that a later
		// message's transient failure rolls back (endForRetry) takes the
		// dead letter with it, and parks the message again when it comes
		// back; counted at each round, one dead letter would look like many.
		bt.afterCommit(parked)
		return nil
	}
	parked()
	return nil
}

func execInSavepoint(ctx context.Context, tx wmsql.Tx, query string, args ...any) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT dead_letter"); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT dead_letter"); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	_, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT dead_letter")
	return err
}

func truncateError(err error) string {
	s := err.Error()
	if len(s) > 4000 {
		s = s[:4000]
	}
	return s
}

const deadLetterColumns = `id, message_id, topic, handler, coalesce(payload::text, 'null'), metadata::text, error, attempts, failed_at, replays, resolved_at, resolution`

func scanDeadLetter(row interface{ Scan(...any) error }, process string) (DeadLetter, error) {
	var d DeadLetter
	var payload, md string
	if err := row.Scan(&d.ID, &d.MessageID, &d.Topic, &d.Handler, &payload, &md, &d.Error, &d.Attempts, &d.FailedAt, &d.Replays, &d.ResolvedAt, &d.Resolution); err != nil {
		return d, err
	}
	d.Payload = json.RawMessage(payload)
	d.Process = process
	if err := json.Unmarshal([]byte(md), &d.Metadata); err != nil {
		return d, fmt.Errorf("dead letter %d metadata: %w", d.ID, err)
	}
	return d, nil
}

// DeadLetters lists dead letters, newest first; open ones only unless all.
func (b *Bus) DeadLetters(ctx context.Context, all bool, limit int) ([]DeadLetter, error) {
	return b.deadLetters(ctx, all, limit, nil)
}

// LocalDeadLetters lists the dead letters of this process's own handlers,
// as DeadLetters does: on a database shared by several processes, each
// letter is listed by the process that can replay it.
func (b *Bus) LocalDeadLetters(ctx context.Context, all bool, limit int) ([]DeadLetter, error) {
	b.mu.Lock()
	names := make([]string, 0, len(b.handlers))
	for name := range b.handlers {
		names = append(names, name)
	}
	b.mu.Unlock()
	return b.deadLetters(ctx, all, limit, names)
}

// deadLetters lists dead letters, of handlers only when it is not nil.
func (b *Bus) deadLetters(ctx context.Context, all bool, limit int, handlers []string) ([]DeadLetter, error) {
	q := `SELECT ` + deadLetterColumns + ` FROM dead_letters WHERE true`
	args := []any{limit}
	if !all {
		q += ` AND resolved_at IS NULL`
	}
	if handlers != nil {
		q += ` AND handler = ANY($2::text[])`
		args = append(args, handlers)
	}
	q += ` ORDER BY id DESC LIMIT $1`
	rows, err := b.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		d, err := scanDeadLetter(rows, b.cfg.Process)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeadLetter returns one dead letter.
func (b *Bus) DeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	d, err := scanDeadLetter(b.db.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE id = $1`, id), b.cfg.Process)
	if err != nil {
		if errors.Is(err, errNoRows) {
			return d, ErrDeadLetterNotFound
		}
		return d, fmt.Errorf("dead letter %d: %w", id, err)
	}
	return d, nil
}

// Replay hands a dead letter back to its handler. A letter already
// replayed is returned as it is, and the handler's record of applied
// messages makes two racing replays apply once. When the handler runs in
// another process on this database (a split shop on the postgres
// transport), that process is asked to replay it (replayChannel) and
// Replay waits for its answer.
func (b *Bus) Replay(ctx context.Context, id int64) (DeadLetter, error) {
	d, err := b.replayHere(ctx, id)
	if errors.Is(err, ErrHandlerNotHere) {
		return b.transport.replayElsewhere(ctx, d)
	}
	return d, err
}

// replayAsked replays a dead letter that another process asked for, if its
// handler runs here.
func (b *Bus) replayAsked(id int64) {
	ctx, cancel := context.WithTimeout(b.killCtx, time.Minute)
	defer cancel()
	if _, err := b.replayHere(ctx, id); err != nil && !errors.Is(err, ErrHandlerNotHere) {
		b.log.Warn("bus: replay asked by another process failed", "dead_letter", id, "err", err)
	}
}

// askReplay asks the processes on this database to replay d and waits
// until one of them has tried (its replay count moves) or ctx or 15 s end.
func (b *Bus) askReplay(ctx context.Context, d DeadLetter) (DeadLetter, error) {
	if _, err := b.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, replayChannel, strconv.FormatInt(d.ID, 10)); err != nil {
		return d, fmt.Errorf("ask for the replay of dead letter %d: %w", d.ID, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return d, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		now, err := b.DeadLetter(ctx, d.ID)
		if err != nil {
			return d, err
		}
		if now.Replays > d.Replays || now.Resolution != nil {
			if now.Resolution != nil && *now.Resolution == "replayed" {
				return now, nil
			}
			return now, &ReplayError{Err: errors.New(now.Error)}
		}
	}
	return d, fmt.Errorf("%w: no process running handler %s answered within 15s", ErrHandlerNotHere, d.Handler)
}

// replayHere replays a dead letter if its handler runs in this process.
func (b *Bus) replayHere(ctx context.Context, id int64) (DeadLetter, error) {
	d, err := b.DeadLetter(ctx, id)
	if err != nil {
		return d, err
	}
	if d.Resolution != nil && *d.Resolution == "discarded" {
		return d, ErrDiscarded
	}
	if d.Resolution != nil && *d.Resolution == "replayed" {
		return d, nil // applied already: replaying again changes nothing
	}
	b.mu.Lock()
	h, ok := b.handlers[d.Handler]
	b.mu.Unlock()
	if !ok {
		return d, ErrHandlerNotHere
	}
	msg := message.NewMessage(d.MessageID, []byte(d.Payload))
	for k, v := range d.Metadata {
		msg.Metadata.Set(k, v)
	}
	md := metadataOf(msg)
	if md.Event == "" {
		md.Event = d.Topic
	}
	// The handler runs in the trace of the message's publisher, as it did
	// when the message was first delivered (its metadata keeps the trace
	// context): apply's replay span (startReplay) takes it from md, and
	// links the span of the request that asked for the replay, in ctx.
	ev, err := b.registry.decode(md.Event, msg.Payload)
	if err == nil {
		err = b.apply(ctx, h, md, ev, nil)
	}
	if err != nil {
		_, uerr := b.db.ExecContext(ctx, `UPDATE dead_letters SET replays = replays + 1, error = $2 WHERE id = $1`, id, truncateError(err))
		return d, errors.Join(&ReplayError{Err: err}, uerr)
	}
	if _, err := b.db.ExecContext(ctx,
		`UPDATE dead_letters SET replays = replays + 1, resolved_at = coalesce(resolved_at, now()), resolution = 'replayed' WHERE id = $1`, id); err != nil {
		return d, fmt.Errorf("mark dead letter %d replayed: %w", id, err)
	}
	b.metrics.replayed.WithLabelValues(h.name).Inc()
	return b.DeadLetter(ctx, id)
}

// Discard closes a dead letter without applying it.
func (b *Bus) Discard(ctx context.Context, id int64) error {
	res, err := b.db.ExecContext(ctx,
		`UPDATE dead_letters SET resolved_at = now(), resolution = 'discarded' WHERE id = $1 AND resolved_at IS NULL`, id)
	if err != nil {
		return fmt.Errorf("discard dead letter %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := b.DeadLetter(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
