package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

var (
	errUnknownEvent = errors.New("unknown event")
	errDuplicate    = errors.New("message already applied")
	errClosing      = errors.New("bus closing")
)

func (b *Bus) isClosing() bool {
	select {
	case <-b.closing:
		return true
	default:
		return false
	}
}

// consume is the router's handler for h: it applies the message once.
// A transient failure (IsTransient) ends the batch and the group reads
// again from its offset after a pause outside any transaction (see
// endForRetry and backoff.HandleError), for as long as it takes; with no
// batch (the rabbitmq transport) the message is retried here, with the
// same pauses and no transaction open meanwhile. A permanent failure is
// retried with backoff and parked as a dead letter after the last
// attempt, so that the messages behind it keep flowing.
func (b *Bus) consume(h *handler) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		batch := batchOf(msg.Context())
		if batch != nil && batch.retrying() != nil {
			// An earlier message of the batch failed transiently: this one
			// comes again when the group reads from its offset. The
			// acknowledgement changes nothing: the batch's offset write
			// fails.
			return nil
		}
		// The subscriber cancels a message's context as soon as it starts
		// closing; a handler in flight gets until CloseTimeout to finish.
		h.busy.Add(1)
		defer h.busy.Add(-1)
		ctx, cancel := context.WithCancel(context.WithoutCancel(msg.Context()))
		defer cancel()
		defer context.AfterFunc(b.killCtx, cancel)()
		md := metadataOf(msg)
		if md.Event == "" {
			md.Event = h.topic
		}
		ev, err := b.registry.decode(md.Event, msg.Payload)
		if errors.Is(err, errUnknownEvent) {
			b.log.WarnContext(ctx, "bus: unknown event acknowledged without handling", "handler", h.name, "event", md.Event, "message_id", md.MessageID)
			b.metrics.unknown.WithLabelValues(h.name).Inc()
			return nil
		}
		// Each attempt is a span, a child of the span that published the
		// message (tracing.go); try numbers them, also across the batches
		// that read the message again after a transient failure.
		try := h.tries.first(msg.UUID)
		if err != nil { // a payload that cannot be decoded will never succeed
			actx, span := b.startHandle(ctx, h, msg, try)
			parked, perr := b.park(actx, h, msg, batch, err, 1)
			endHandle(span, parkOutcome(parked), err)
			return perr
		}
		wait := b.cfg.RetryBackoff
		for attempt := 1; ; try++ {
			actx, span := b.startHandle(ctx, h, msg, try)
			duplicate, err := b.applyMessage(actx, h, md, ev, batch)
			if err == nil {
				if duplicate {
					endHandle(span, OutcomeDuplicate, nil)
				} else {
					endHandle(span, OutcomeApplied, nil)
				}
				if batch == nil {
					// (In a batch, the group has recovered once its offset
					// is written: the subscriber's backoff sees to that.
					// A message before the failed one, found applied when
					// the group reads again, is no recovery.)
					h.retry.succeeded()
					h.retry.store(actx)
				}
				return nil
			}
			if ctx.Err() != nil || b.isClosing() {
				// Not acked: delivered again later. A failure of the
				// handler's own is no part of the shutdown: say so. (A
				// statement cancelled because the handler outlived
				// CloseTimeout is the shutdown's.)
				cutOff := ctx.Err() != nil && db.SQLState(err) == "57014"
				if !causedByClosing(err) && !cutOff {
					b.log.WarnContext(actx, "bus: handler failed while the bus was closing; its message comes again after a restart",
						"handler", h.name, "message_id", md.MessageID, "attempt", attempt, "err", err)
				}
				endHandle(span, OutcomeRetryTransient, err)
				return errClosing
			}
			if IsTransient(err) {
				endHandle(span, OutcomeRetryTransient, err)
				b.metrics.retried.WithLabelValues(h.name, kindTransient).Inc()
				h.retry.failed(actx, err)
				if batch != nil {
					h.tries.failedTransiently(msg.UUID, try)
					batch.endForRetry(ctx, err)
					return nil // the batch's offset write fails: see endForRetry
				}
				h.retry.store(actx)
				select {
				case <-time.After(h.retry.pause()):
				case <-b.closing:
					return errClosing
				}
				continue // the attempts are for permanent failures
			}
			if attempt >= b.cfg.MaxAttempts {
				parked, perr := b.park(actx, h, msg, batch, err, attempt)
				endHandle(span, parkOutcome(parked), err)
				return perr
			}
			b.metrics.retried.WithLabelValues(h.name, kindPermanent).Inc()
			b.log.WarnContext(actx, "bus: handler failed; retrying", "handler", h.name, "message_id", md.MessageID, "attempt", attempt, "err", err)
			endHandle(span, OutcomeRetryPermanent, err)
			select {
			case <-time.After(wait):
			case <-b.closing:
				return errClosing // its error is logged just above
			}
			wait = min(wait*2, 5*time.Second)
			attempt++
		}
	}
}

// parkOutcome is the outcome of the last attempt at a message: parked as a
// dead letter, or (the dead letter could not be written just then) to come
// again after a pause.
func parkOutcome(parked bool) string {
	if parked {
		return OutcomeDeadLetter
	}
	return OutcomeRetryTransient
}

// park writes msg as a dead letter. Writing it may fail transiently (the
// database away just then): a transient failure of the group like a
// handler's, so the batch ends and the group pauses outside any
// transaction and reads again (the message's attempts come again, then the
// dead letter). Returned to watermill-sql, the error would nack the message,
// which it sends again at once inside the open batch, at RetryBackoff for
// as long as the write fails. With no batch (the rabbitmq transport) the
// nack gives it back to the broker after the same pause. parked reports
// that the dead letter is written (in a batch: to commit with it).
func (b *Bus) park(ctx context.Context, h *handler, msg *message.Message, batch *batchTx, cause error, attempts int) (parked bool, err error) {
	err = b.deadLetter(ctx, h, msg, cause, attempts)
	if err == nil {
		return true, nil
	}
	if !IsTransient(err) || ctx.Err() != nil || b.isClosing() {
		return false, err
	}
	b.metrics.retried.WithLabelValues(h.name, kindTransient).Inc()
	h.retry.failed(ctx, err)
	if batch != nil {
		batch.endForRetry(ctx, err)
		return false, nil
	}
	h.retry.store(ctx)
	select {
	case <-time.After(h.retry.pause()):
	case <-b.closing:
	}
	return false, err
}

// apply runs h once, together with the record that this handler applied
// this message: inside the subscriber's batch transaction when the module
// shares the bus's database (see batch.go), else in a transaction of its
// own on the consumer's database. A duplicate finds the record and changes
// nothing.
//
// apply is a replay's (a dead letter applied again): its attempt is a span
// of its own like consume's, a child of the message's publish span, linked
// to the span of whoever asked for the replay.
func (b *Bus) apply(ctx context.Context, h *handler, md Metadata, ev Event, batch *batchTx) error {
	actx, span := b.startReplay(ctx, h, md)
	duplicate, err := b.applyMessage(actx, h, md, ev, batch)
	switch {
	case err != nil:
		// It stays a dead letter, whatever the failure.
		endHandle(span, OutcomeDeadLetter, err)
	case duplicate:
		endHandle(span, OutcomeDuplicate, nil)
	default:
		endHandle(span, OutcomeApplied, nil)
	}
	return err
}

// applyMessage is apply, and reports whether the message was found
// applied already.
func (b *Bus) applyMessage(ctx context.Context, h *handler, md Metadata, ev Event, batch *batchTx) (duplicate bool, err error) {
	start := time.Now()
	err = errBatchEnded
	if batch != nil && h.inBatch != nil {
		err = b.applyInBatch(ctx, h, md, ev, batch)
	}
	if errors.Is(err, errBatchEnded) {
		err = b.applyAlone(ctx, h, md, ev)
	}
	switch {
	case errors.Is(err, errDuplicate):
		b.metrics.duplicates.WithLabelValues(h.name).Inc()
		return true, nil
	case err != nil:
		return false, err
	}
	if batch != nil {
		// Progress since the last transient failure (a duplicate is none):
		// the next one pauses the shortest time again (see progressed).
		// Once the batch commits: a batch that parked a dead letter rolls
		// back at a transient failure, and what it applied comes again.
		batch.afterCommit(h.retry.progressed)
	}
	b.metrics.processed.WithLabelValues(h.name).Inc()
	b.metrics.latency.WithLabelValues(h.name).Observe(time.Since(start).Seconds())
	if !md.OccurredAt.IsZero() {
		b.metrics.hop.WithLabelValues(h.name).Observe(start.Sub(md.OccurredAt).Seconds())
	}
	return false, nil
}

// applyAlone applies one message in its own transaction on the consumer's
// pool.
func (b *Bus) applyAlone(ctx context.Context, h *handler, md Metadata, ev Event) error {
	return h.consumer.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The handler's commit need not wait for its WAL flush: the
		// subscriber acknowledges the message only afterwards, with a
		// synchronous commit, and WAL is flushed in order. A crash before
		// that flush loses the effect and the inbox mark together, and the
		// unacknowledged message is delivered again.
		// Handlers are not bounded by the statement timeout that the
		// module's pool may have for its HTTP requests (same round trip).
		if err := tx.Exec(`SET LOCAL synchronous_commit = off; ` + db.LiftStatementTimeout).Error; err != nil {
			return fmt.Errorf("handler transaction: %w", err)
		}
		return b.applyIn(ctx, h, md, ev, tx)
	})
}

// applyIn looks the message up in the inbox, runs the handler and marks
// the message, all in tx.
func (b *Bus) applyIn(ctx context.Context, h *handler, md Metadata, ev Event, tx *gorm.DB) error {
	// Look before running, mark after: the transaction takes a transaction
	// id (which holds back every subscriber on the cluster) only once the
	// handler writes, not while it prepares.
	var seen []int
	if err := tx.Raw(`SELECT 1 FROM processed_messages WHERE handler = ? AND message_id = ?`, h.name, md.MessageID).Scan(&seen).Error; err != nil {
		return fmt.Errorf("look up message: %w", err)
	}
	if len(seen) > 0 {
		return errDuplicate
	}
	if err := b.runHandler(ctx, h, md, ev, tx); err != nil {
		return err
	}
	// A concurrent delivery (a replay racing the subscriber) that marked
	// first wins; this one rolls back its effect.
	res := tx.Exec(`INSERT INTO processed_messages (handler, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, h.name, md.MessageID)
	if res.Error != nil {
		return fmt.Errorf("record message: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return errDuplicate
	}
	return nil
}

// markMessage records that a handler applied a message; it changes no row
// when the mark exists (applyIn has the same statement in gorm's syntax).
const markMessage = `INSERT INTO processed_messages (handler, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`

// runHandler runs h's function in tx, turning a panic into an error.
func (b *Bus) runHandler(ctx context.Context, h *handler, md Metadata, ev Event, tx *gorm.DB) (err error) {
	defer func() {
		if p := recover(); p != nil {
			// A panic is a bug, however transient its cause may look: it
			// uses the message's attempts and then parks it.
			err = Permanent(fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack()))
		}
	}()
	if err := injectFault(ctx, h.name, md.MessageID); err != nil { // a no-op outside the chaos suite's build (faults_off.go)
		return err
	}
	return h.run(withHandling(ctx, md), tx, ev)
}
