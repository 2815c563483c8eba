package bus

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// ErrNotInTransaction means Publish was given a handle that is not inside a
// transaction: an event must commit or roll back with its state change.
var ErrNotInTransaction = errors.New("bus: publish needs a *gorm.DB inside a transaction")

// Publish writes events in tx, the caller's transaction: they are delivered
// if and only if tx commits. Metadata comes from ctx: inside a handler the
// events inherit the handled message's correlation id and idempotency key
// and name it as their cause. Each event is a span "publish <event>", a
// child of ctx's span, whose trace context the message carries to its
// handlers (tracing.go).
func (b *Bus) Publish(ctx context.Context, tx *gorm.DB, events ...Event) error {
	sqlTx, err := txOf(tx)
	if err != nil {
		return err
	}
	if bc, ok := tx.Statement.ConnPool.(batchConn); ok {
		// A handler in a batch whose first statement is this publish: its
		// savepoint and mark go first, so that the events are undone with
		// the rest of its effect.
		if err := bc.t.sendMark(ctx); err != nil {
			return err
		}
		if bc.t.duplicate {
			return errDuplicate
		}
	}
	inTx, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(sqlTx), wmsql.PublisherConfig{SchemaAdapter: b.schemaAdapter()}, nil)
	if err != nil {
		return fmt.Errorf("bus publisher: %w", err)
	}
	now := time.Now()
	tables := map[string]bool{} // the topics whose tables were written to
	for _, ev := range events {
		name := ev.EventName()
		if !b.registry.Known(name) {
			return fmt.Errorf("bus: publish of unregistered event %q", name)
		}
		msg, err := newMessage(ctx, ev, now)
		if err != nil {
			return err
		}
		// Its span's trace context travels in its metadata (tracing.go).
		span := b.startPublish(ctx, name, msg)
		table, err := b.transport.publish(inTx, name, msg)
		if err != nil {
			err = fmt.Errorf("publish %s: %w", name, err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			return err
		}
		span.End()
		tables[table] = true
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	// Wake the subscribers once tx has committed (notify.go), never when it
	// rolls back.
	if ac, ok := tx.Statement.ConnPool.(db.AfterCommitter); ok {
		ac.AfterCommit(func() {
			for _, t := range names {
				b.wake.wake(t)
			}
			b.notify.add(names)
		})
		return nil
	}
	// A plain transaction: NOTIFY inside it is sent exactly at its commit.
	for _, t := range names {
		if _, err := sqlTx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, t); err != nil {
			return fmt.Errorf("notify %s: %w", t, err)
		}
	}
	return nil
}

func newMessage(ctx context.Context, ev Event, now time.Time) (*message.Message, error) {
	payload, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ev.EventName(), err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("message id: %w", err)
	}
	msg := message.NewMessage(id.String(), payload)
	msg.Metadata = outgoing(ctx, ev.EventName(), now)
	if msg.Metadata.Get(KeyCorrelationID) == "" {
		msg.Metadata.Set(KeyCorrelationID, msg.UUID) // the first message of a chain
	}
	return msg, nil
}

// txOf digs the *sql.Tx out of a gorm transaction.
func txOf(tx *gorm.DB) (*sql.Tx, error) {
	if tx == nil || tx.Statement == nil {
		return nil, ErrNotInTransaction
	}
	switch p := tx.Statement.ConnPool.(type) {
	case *sql.Tx:
		return p, nil
	case *db.Tx:
		return p.Tx, nil
	case batchConn:
		return p.t.tx, nil
	case *gorm.PreparedStmtTX:
		if t, ok := p.Tx.(*sql.Tx); ok {
			return t, nil
		}
	}
	return nil, ErrNotInTransaction
}
