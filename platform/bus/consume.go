package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"gorm.io/gorm"
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

// consume is the router's handler for h: it applies the message once,
// retrying with backoff, and parks it as a dead letter after the last
// attempt so that the messages behind it keep flowing.
func (b *Bus) consume(h *handler) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		// The subscriber cancels a message's context as soon as it starts
		// closing; a handler in flight gets until CloseTimeout to finish.
		ctx, cancel := context.WithCancel(context.WithoutCancel(msg.Context()))
		defer cancel()
		defer context.AfterFunc(b.killCtx, cancel)()
		md := metadataOf(msg)
		if md.Event == "" {
			md.Event = h.topic
		}
		ev, err := b.registry.decode(md.Event, msg.Payload)
		if errors.Is(err, errUnknownEvent) {
			b.log.Warn("bus: unknown event acknowledged without handling", "handler", h.name, "event", md.Event, "message_id", md.MessageID)
			b.metrics.unknown.WithLabelValues(h.name).Inc()
			return nil
		}
		if err != nil { // a payload that cannot be decoded will never succeed
			return b.deadLetter(ctx, h, msg, err, 1)
		}
		wait := b.cfg.RetryBackoff
		for attempt := 1; ; attempt++ {
			err := b.apply(ctx, h, md, ev)
			if err == nil {
				return nil
			}
			if ctx.Err() != nil || b.isClosing() {
				return errClosing // not acked: delivered again later
			}
			if attempt >= b.cfg.MaxAttempts {
				return b.deadLetter(ctx, h, msg, err, attempt)
			}
			b.metrics.retried.WithLabelValues(h.name).Inc()
			b.log.Warn("bus: handler failed; retrying", "handler", h.name, "message_id", md.MessageID, "attempt", attempt, "err", err)
			select {
			case <-time.After(wait):
			case <-b.closing:
				return errClosing
			}
			wait = min(wait*2, 5*time.Second)
		}
	}
}

// apply runs h once in its own transaction on the consumer's database,
// together with the record that this handler applied this message. A
// duplicate finds the record and changes nothing.
func (b *Bus) apply(ctx context.Context, h *handler, md Metadata, ev Event) (err error) {
	start := time.Now()
	err = h.consumer.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) (err error) {
		// The handler's commit need not wait for its WAL flush: the
		// subscriber acknowledges the message only afterwards, with a
		// synchronous commit, and WAL is flushed in order. A crash before
		// that flush loses the effect and the inbox mark together, and the
		// unacknowledged message is delivered again.
		if err := tx.Exec(`SET LOCAL synchronous_commit = off`).Error; err != nil {
			return fmt.Errorf("handler transaction: %w", err)
		}
		// Look before running, mark after: the transaction takes a
		// transaction id (which holds back every subscriber on the cluster)
		// only once the handler writes, not while it prepares.
		var seen []int
		if err := tx.Raw(`SELECT 1 FROM processed_messages WHERE handler = ? AND message_id = ?`, h.name, md.MessageID).Scan(&seen).Error; err != nil {
			return fmt.Errorf("look up message: %w", err)
		}
		if len(seen) > 0 {
			return errDuplicate
		}
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack())
			}
		}()
		if err := h.run(withCurrent(ctx, md), tx, ev); err != nil {
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
	})
	switch {
	case errors.Is(err, errDuplicate):
		b.metrics.duplicates.WithLabelValues(h.name).Inc()
		return nil
	case err != nil:
		return err
	}
	b.metrics.processed.WithLabelValues(h.name).Inc()
	b.metrics.latency.WithLabelValues(h.name).Observe(time.Since(start).Seconds())
	if !md.OccurredAt.IsZero() {
		b.metrics.hop.WithLabelValues(h.name).Observe(start.Sub(md.OccurredAt).Seconds())
	}
	return nil
}
