package bus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/modshop/modshop/platform/db"
)

// The batch transaction as each of its users sees it: watermill-sql's
// subscriber (batchBeginner, batchTx: a wmsql.Tx), a handler's gorm handle
// (batchConn: a gorm ConnPool on the same transaction) and pgx underneath
// (execWithMark's pipeline). What runs in it, and when, is batch.go's.

// batchBeginner starts subscriber transactions that handlers can share.
type batchBeginner struct{ db *sql.DB }

func (b batchBeginner) BeginTx(ctx context.Context, opts *sql.TxOptions) (wmsql.Tx, error) {
	// database/sql rolls a transaction back when its context ends, between
	// any two statements. The subscriber's context ends as soon as the bus
	// starts closing, while a handler in flight may still finish; the
	// subscriber always commits or rolls back itself, after it.
	ctx = context.WithoutCancel(ctx)
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &batchTx{tx: tx, conn: conn}, nil
}

func (b batchBeginner) ExecContext(ctx context.Context, query string, args ...any) (wmsql.Result, error) {
	return b.db.ExecContext(ctx, query, args...)
}

func (b batchBeginner) QueryContext(ctx context.Context, query string, args ...any) (wmsql.Rows, error) {
	return b.db.QueryContext(ctx, query, args...)
}

// batchTx is a subscriber's transaction. Its lock keeps the subscriber from
// committing (or writing its offset) while a handler is between its
// savepoint and the release or rollback of it: were the subscriber to stop
// waiting for a message (it is closing), it would otherwise commit half of
// a handler's effect.
//
// After a handler succeeds, its savepoint stays open and the transaction
// keeps acting as its module: the next message's savepoint releases it in
// the same round trip, and only the subscriber's own statements switch
// back to the bus first.
type batchTx struct {
	mu   sync.Mutex
	tx   *sql.Tx
	conn *sql.Conn // tx's connection, for pipelining (batchConn.ExecContext)
	done bool
	// pending is the next message's savepoint and inbox mark, not sent yet:
	// they go in one round trip with the handler's first statement.
	pending *pendingMark
	// duplicate: the pending mark found the message applied already.
	duplicate bool
	// markAfter: the message was looked up when its savepoint was
	// entered (its handler read first) and is marked after its handler.
	markAfter bool
	// opened: this message's own savepoint is known to exist. Until then
	// savepoint bus_apply is the previous message's, holding its effect,
	// and must not be rolled back.
	opened bool
	// in is the module the transaction acts as, with savepoint bus_apply
	// open; nil: it acts as the bus and no savepoint is open.
	in *inBatch
	// after runs once the batch has committed (db.AfterCommitter).
	after []func()
	// applied counts the messages whose effects the transaction holds
	// (their row locks with them); limited: lock_timeout is set in it.
	applied int
	limited bool
	// parked: a dead letter is written in the transaction. It must commit
	// with the offset (or the message would be parked again when the batch
	// comes back), so the batch does not checkpoint any more.
	parked bool
	// retryLater: a transient failure ended the batch (endForRetry); the
	// subscriber's offset write fails with it.
	retryLater error
}

// markParked records that a dead letter was written in the batch and lifts
// the lock limit: with no checkpoint to fall back on, a message waits on a
// lock as long as it would in a transaction of its own.
func (t *batchTx) markParked(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.parked = true
	if !t.limited || t.done {
		return nil
	}
	t.limited = false
	_, err := t.tx.ExecContext(ctx, "SET LOCAL lock_timeout TO DEFAULT")
	return err
}

// batchConn is the batch transaction as a handler's gorm handle sees it,
// while the handler holds t.mu.
type batchConn struct{ t *batchTx }

func (c batchConn) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := c.t.sendMark(ctx); err != nil {
		return nil, err
	}
	return c.t.tx.PrepareContext(ctx, query)
}

// pendingMark is a message's inbox mark waiting to be sent.
type pendingMark struct {
	handler, messageID string
	// enter: the transaction acts as the bus with no savepoint open (the
	// first message of the transaction): the savepoint is entered, acting
	// as this module, instead of the previous message's being released.
	enter *inBatch
}

// lookupMessage finds a message's inbox mark (RowsAffected: 1 when it is
// there).
const lookupMessage = `SELECT 1 FROM processed_messages WHERE handler = $1 AND message_id = $2`

// sendMark sends the pending savepoint and mark on their own; t.mu is held.
// The first message of the transaction is looked up instead, and marked
// after its handler (markAfter): a handler that reads first takes no
// transaction id until it writes.
func (t *batchTx) sendMark(ctx context.Context) error {
	p := t.pending
	if p == nil {
		return nil
	}
	t.pending = nil
	if p.enter != nil {
		res, err := t.tx.ExecContext(ctx, p.enter.enter+"; "+lookupMessage, pgx.QueryExecModeSimpleProtocol, p.handler, p.messageID)
		if err != nil {
			return fmt.Errorf("look up message: %w", err) // opened unknown: applyInBatch abandons the batch
		}
		t.opened, t.in = true, p.enter
		if n, err := res.RowsAffected(); err != nil || n != 0 {
			t.duplicate = true
		} else {
			t.markAfter = true
		}
		return nil
	}
	res, err := t.tx.ExecContext(ctx, "RELEASE SAVEPOINT bus_apply; SAVEPOINT bus_apply; "+markMessage, pgx.QueryExecModeSimpleProtocol, p.handler, p.messageID)
	if err != nil {
		return fmt.Errorf("mark message: %w", err) // opened unknown: applyInBatch abandons the batch
	}
	t.opened = true
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.duplicate = true
	}
	return nil
}

// sendMarkAfter marks a message looked up by sendMark once its handler has
// run; a concurrent delivery (a replay racing the subscriber) that marked
// first wins, and this one is a duplicate (its effect rolled back). t.mu
// is held.
func (t *batchTx) sendMarkAfter(ctx context.Context, handler, messageID string) error {
	res, err := t.tx.ExecContext(ctx, markMessage, handler, messageID)
	if err != nil {
		return fmt.Errorf("record message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		t.duplicate = true
	}
	return nil
}

// execWithMark sends the pending savepoint and mark and the handler's
// statement in one round trip (a pipeline on the transaction's
// connection, each statement as it would be sent alone); t.mu is held.
func (t *batchTx) execWithMark(ctx context.Context, query string, args []any) (sql.Result, error) {
	p := t.pending
	t.pending = nil
	var affected int64
	err := t.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("bus: the batch's connection is a %T, not pgx's", dc)
		}
		// Before the mark: the previous message's savepoint released and
		// this one's opened. The first message of the transaction enters
		// its savepoint and the module's role first, on its own: pgx
		// prepares a pipeline's new statements before it runs any, and
		// the handler's (and the mark's) names are the module's.
		prefix := []string{"RELEASE SAVEPOINT bus_apply", "SAVEPOINT bus_apply"}
		opens := 1 // the index of SAVEPOINT bus_apply
		if p.enter != nil {
			if _, err := sc.Conn().Exec(ctx, p.enter.enter); err != nil {
				return fmt.Errorf("enter the handler's savepoint: %w", err) // opened unknown: applyInBatch abandons the batch
			}
			t.opened, t.in = true, p.enter
			prefix, opens = nil, -1
		}
		var batch pgx.Batch
		for _, q := range prefix {
			batch.Queue(q)
		}
		batch.Queue(markMessage, p.handler, p.messageID)
		batch.Queue(query, args...)
		results := sc.Conn().SendBatch(ctx, &batch)
		mark := len(prefix)
		for i := range mark + 2 {
			tag, err := results.Exec()
			if err != nil {
				_ = results.Close()
				if i < mark {
					return fmt.Errorf("enter the handler's savepoint: %w", err)
				}
				if i == mark {
					return fmt.Errorf("mark message: %w", err)
				}
				return err
			}
			switch {
			case i == opens:
				t.opened = true
			case i == mark:
				if tag.RowsAffected() != 1 {
					t.duplicate = true
				}
			case i == mark+1:
				affected = tag.RowsAffected()
			}
		}
		return results.Close()
	})
	if err != nil {
		return nil, err
	}
	if t.duplicate {
		return nil, errDuplicate
	}
	return driverResult(affected), nil
}

// driverResult is the sql.Result of a pipelined statement.
type driverResult int64

func (r driverResult) LastInsertId() (int64, error) {
	return 0, errors.New("bus: no LastInsertId in PostgreSQL")
}
func (r driverResult) RowsAffected() (int64, error) { return int64(r), nil }

func (c batchConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	// A statement without arguments goes by the simple protocol (it may be
	// several statements); one with arguments can join the pipeline.
	if c.t.pending != nil && len(args) > 0 {
		return c.t.execWithMark(ctx, query, args)
	}
	if err := c.t.sendMark(ctx); err != nil {
		return nil, err
	}
	if c.t.duplicate {
		return nil, errDuplicate
	}
	return c.t.tx.ExecContext(ctx, query, args...)
}

func (c batchConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := c.t.sendMark(ctx); err != nil {
		return nil, err
	}
	if c.t.duplicate { // no need to read on
		return nil, errDuplicate
	}
	return c.t.tx.QueryContext(ctx, query, args...)
}

func (c batchConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if err := c.t.sendMark(ctx); err != nil {
		return c.t.tx.QueryRowContext(ctx, "SELECT 1 WHERE false") // the transaction is aborted: the scan fails
	}
	return c.t.tx.QueryRowContext(ctx, query, args...)
}

// Commit and Rollback make gorm treat the handle as a transaction (a
// handler's own Transaction call becomes a savepoint); the batch itself is
// the subscriber's to end.
func (c batchConn) Commit() error   { return errors.New("bus: a handler cannot commit its batch") }
func (c batchConn) Rollback() error { return errors.New("bus: a handler cannot roll back its batch") }

// AfterCommit runs f once the batch has committed.
func (c batchConn) AfterCommit(f func()) { c.t.after = append(c.t.after, f) }

func (t *batchTx) ExecContext(ctx context.Context, query string, args ...any) (wmsql.Result, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retryLater != nil {
		return nil, t.retryLaterErr()
	}
	if t.in != nil && t.in.leaveSteps != nil && len(args) > 0 {
		// The subscriber's offset write (or the bus's dead letter) goes in
		// one round trip with the release of the last handler's savepoint.
		return t.execAsBus(ctx, query, args)
	}
	if err := t.actAsBus(ctx); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// execAsBus is actAsBus and query in one pipeline; t.mu is held.
func (t *batchTx) execAsBus(ctx context.Context, query string, args []any) (sql.Result, error) {
	leave := t.in.leaveSteps
	var affected int64
	left := false
	err := t.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("bus: the batch's connection is a %T, not pgx's", dc)
		}
		var batch pgx.Batch
		for _, q := range leave {
			batch.Queue(q)
		}
		batch.Queue(query, args...)
		results := sc.Conn().SendBatch(ctx, &batch)
		for i := range len(leave) + 1 {
			tag, err := results.Exec()
			if err != nil {
				_ = results.Close()
				return err
			}
			if i == len(leave)-1 {
				left = true
			}
			affected = tag.RowsAffected()
		}
		return results.Close()
	})
	if !left {
		t.abandon()
		if err == nil {
			err = errors.New("bus: the pipeline ended early")
		}
		return nil, fmt.Errorf("bus: switch back from the handler's role: %w", err)
	}
	t.in = nil
	if err != nil {
		return nil, err
	}
	return driverResult(affected), nil
}

func (t *batchTx) QueryContext(ctx context.Context, query string, args ...any) (wmsql.Rows, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retryLater != nil {
		return nil, t.retryLaterErr()
	}
	if err := t.actAsBus(ctx); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *batchTx) Commit() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retryLater != nil {
		return sql.ErrTxDone // ended by endForRetry, without its offset
	}
	t.done = true
	after := t.after
	t.after = nil
	err := t.tx.Commit()
	_ = t.conn.Close()
	if err != nil {
		return err
	}
	for _, f := range after {
		f()
	}
	return nil
}

func (t *batchTx) Rollback() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.retryLater != nil {
		return sql.ErrTxDone // ended by endForRetry
	}
	t.done = true
	t.after = nil
	err := t.tx.Rollback()
	_ = t.conn.Close()
	// A connection that a cancelled query broke (the subscriber's on
	// shutdown) cannot roll back; the server has ended the transaction with
	// it. Nothing to report.
	// Nor can one that the server or the network lost (an outage).
	if errors.Is(err, context.Canceled) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || db.IsUnavailable(err) {
		return nil
	}
	return err
}

// actAsBus releases the last handler's savepoint and switches back to the
// bus's role; t.mu is held.
func (t *batchTx) actAsBus(ctx context.Context) error {
	if t.in == nil {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, t.in.leave); err != nil {
		t.abandon()
		return fmt.Errorf("bus: switch back from the handler's role: %w", err)
	}
	t.in = nil
	return nil
}

// afterCommit runs f once the batch has committed, and never if it rolls
// back (the bus's own db.AfterCommitter, for what it writes in the batch).
func (t *batchTx) afterCommit(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.after = append(t.after, f)
}

// ended reports whether the subscriber has committed or rolled t back.
func (t *batchTx) ended() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.done
}

// batchOf returns the subscriber's transaction a message was read in.
func batchOf(ctx context.Context) *batchTx {
	tx, _ := wmsql.TxFromContext(ctx)
	bt, _ := tx.(*batchTx)
	return bt
}

// abandon rolls the whole batch back; t.mu is held.
func (t *batchTx) abandon() {
	t.done = true
	t.in = nil
	t.after = nil
	t.pending = nil
	_ = t.tx.Rollback()
	_ = t.conn.Close()
}
