package bus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// Applying in the batch.
//
// A subscriber reads up to BatchSize messages in one transaction and
// acknowledges them with one offset update at its end. When a consuming
// module's tables live on the bus's own database, its handlers run inside
// that same transaction: each message in a savepoint, acting as the
// module's role with the module's search path, with the inbox mark written
// beside the effect. The batch then commits once, with its offset, instead
// of once per message: the effect, the mark and the acknowledgement are one
// atomic commit, and the commits per message drop from about two to a
// fraction (see docs/bus.md for the figures).
//
// The walls hold: inside the savepoint the connection acts as the module's
// role, and it is set back to the bus's role before the savepoint is
// released, so the offset update and any dead letter are written as the
// bus.
//
// What it costs: a handler's effects become visible when its batch commits
// (milliseconds later under load), and while a batch runs after its first
// write it holds a transaction id, which holds back what every subscriber
// on the cluster may read. Handlers must therefore be quick and never wait
// on anything outside the database; a handler that fails is retried inside
// the batch (the backoff adds up to under a second with the defaults)
// before its message becomes a dead letter. Retrying in a separate
// transaction instead could wait forever on a row lock that an earlier
// message of the same batch holds.
//
// A batch holds the row locks of every message it has applied until it
// commits, so two batches touching the same rows could deadlock across
// their messages. A message after the first therefore waits on a lock at
// most laterLockTimeout; then the batch commits what it has and the
// message runs first in a fresh transaction (checkpoint).

// errBatchEnded means the subscriber finished the batch (it stopped waiting
// for this message): the message is applied on its own instead.
var errBatchEnded = errors.New("bus: the subscriber's batch has ended")

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
type pendingMark struct{ handler, messageID string }

// sendMark sends the pending savepoint and mark on their own; t.mu is held.
func (t *batchTx) sendMark(ctx context.Context) error {
	p := t.pending
	if p == nil {
		return nil
	}
	t.pending = nil
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
		var batch pgx.Batch
		batch.Queue("RELEASE SAVEPOINT bus_apply")
		batch.Queue("SAVEPOINT bus_apply")
		batch.Queue(markMessage, p.handler, p.messageID)
		batch.Queue(query, args...)
		results := sc.Conn().SendBatch(ctx, &batch)
		for i := range 4 {
			tag, err := results.Exec()
			if err != nil {
				_ = results.Close()
				if i < 3 {
					return fmt.Errorf("mark message: %w", err)
				}
				return err
			}
			switch i {
			case 1:
				t.opened = true
			case 2:
				if tag.RowsAffected() != 1 {
					t.duplicate = true
				}
			case 3:
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
	if err := t.actAsBus(ctx); err != nil {
		return nil, err
	}
	return t.tx.ExecContext(ctx, query, args...)
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

// inBatch holds the statements that switch a batch transaction to a
// consuming module's role and back.
type inBatch struct {
	// enter opens savepoint bus_apply and acts as the module.
	enter string
	// leave releases the savepoint and acts as the bus again.
	leave string
	// undo rolls the savepoint back and acts as the bus again.
	undo string
}

// sessionIdentity names the database a pool is connected to, the role it
// acts as and its search path.
type sessionIdentity struct {
	database, role, searchPath string
}

const sessionIdentityQuery = `SELECT current_database() || '@' || coalesce(host(inet_server_addr()), 'local') || ':' ||
	coalesce(inet_server_port()::text, current_setting('port')) || '/' || pg_postmaster_start_time()::text,
	current_user, current_setting('search_path')`

// planInBatch decides whether c's handlers can run in the bus's batch
// transactions: c must use the same database, and the bus's connection must
// be allowed to act as c's role. Otherwise (nil) each message gets its own
// transaction on c's pool.
func (b *Bus) planInBatch(ctx context.Context, c Consumer) (*inBatch, error) {
	if b.cfg.SeparateTransactions || c.SeparateTransactions {
		return nil, nil
	}
	var mod, bus sessionIdentity
	if err := c.DB.WithContext(ctx).Raw(sessionIdentityQuery).Row().Scan(&mod.database, &mod.role, &mod.searchPath); err != nil {
		return nil, fmt.Errorf("bus: identify the database of module %s: %w", c.Module, err)
	}
	if err := b.db.QueryRowContext(ctx, sessionIdentityQuery).Scan(&bus.database, &bus.role, &bus.searchPath); err != nil {
		return nil, fmt.Errorf("bus: identify the bus database: %w", err)
	}
	if mod.database != bus.database {
		b.log.Info("bus: module on another database; each message gets its own transaction", "module", c.Module)
		return nil, nil
	}
	p := &inBatch{
		enter: "SAVEPOINT bus_apply; " + switchTo(mod),
		leave: "RELEASE SAVEPOINT bus_apply; " + switchTo(bus),
		undo:  "ROLLBACK TO SAVEPOINT bus_apply; RELEASE SAVEPOINT bus_apply; " + switchTo(bus),
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, p.enter); err != nil {
		b.log.Info("bus: the bus cannot act as the module's role; each message gets its own transaction", "module", c.Module, "err", err)
		return nil, nil
	}
	return p, nil
}

func switchTo(s sessionIdentity) string {
	return "SET LOCAL ROLE " + pgx.Identifier{s.role}.Sanitize() +
		"; SELECT set_config('search_path', '" + strings.ReplaceAll(s.searchPath, "'", "''") + "', true)"
}

// applyInBatch runs h for one message inside the subscriber's transaction t,
// in a savepoint, acting as the module. Any failure rolls the savepoint
// back, so the batch carries only whole effects; if even that fails, the
// whole batch is rolled back and its messages are delivered again.
//
// The first message of a batch is looked up in the inbox before its
// handler runs and marked after it, so that the batch takes a transaction
// id only once something is written (a slow first handler holds nobody
// back until it writes). The batch has an id from then on, so each later
// message's savepoint and mark are sent together with its handler's first
// statement, pipelined in one round trip (each statement as it would be
// sent alone); a message found applied is rolled back and its handler
// gets errDuplicate from then on. Before a handler's first query, or after
// a handler that wrote nothing, they are sent on their own.
func (b *Bus) applyInBatch(ctx context.Context, h *handler, md Metadata, ev Event, t *batchTx) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errBatchEnded
	}
	if t.applied > 0 && !t.limited && !t.parked {
		if _, err := t.tx.ExecContext(ctx, "SET LOCAL lock_timeout = "+laterLockTimeout); err != nil {
			t.abandon()
			return fmt.Errorf("bus: limit lock waits: %w", err)
		}
		t.limited = true
	}
	err := b.applyInBatchOnce(ctx, h, md, ev, t)
	if err != nil && t.applied > 0 && !t.done && !t.parked && waitedOnLock(err) {
		// It waited on a row lock while the batch holds the locks of the
		// messages before it: commit those and run it first in a fresh
		// transaction, where it may wait (see checkpoint).
		if cerr := t.checkpoint(ctx, advisoryKey(h.topic, h.name)); cerr != nil {
			return errors.Join(err, cerr)
		}
		b.metrics.checkpoints.WithLabelValues(h.name).Inc()
		err = b.applyInBatchOnce(ctx, h, md, ev, t)
	}
	if err == nil {
		t.applied++
	}
	return err
}

// laterLockTimeout bounds how long a message after the first of a batch
// waits on a lock: longer means the batch is in someone's way.
const laterLockTimeout = "'5ms'"

// waitedOnLock reports a statement given up on a lock: lock_timeout
// (55P03) or chosen as a deadlock's victim (40P01). Handlers must wrap
// database errors with %w for it to see them (every handler here does);
// one that does not gets no checkpoint, only the in-batch retries.
func waitedOnLock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "55P03" || pgErr.Code == "40P01")
}

// checkpoint commits what the batch has applied so far and goes on in a
// new transaction on the same connection, with the group's advisory lock
// taken again; t.mu is held and no savepoint is open.
//
// Why: the messages of a batch run one after another in one transaction,
// so the batch holds the row locks of every message it has applied. Two
// batches (two topics whose handlers touch the same rows: reserving and
// selling stock, say) that lock rows in different orders across their
// messages deadlock, and PostgreSQL takes a second (deadlock_timeout) to
// notice. So a message after the first waits on a lock at most
// laterLockTimeout; then the batch commits the effects and inbox marks it
// has, releasing its locks, and the message runs again as the first of a
// fresh transaction, where it may wait as long as a transaction of its own
// would. Rows locked in a fixed order within one message keep that one
// deadlock-free, as they do in separate transactions.
//
// The offset is written at the end of the batch as usual: a crash between
// the two commits delivers the committed messages again, and the inbox
// finds them applied (a batch that parked a dead letter does not
// checkpoint: see parked). The group's turn is kept across the two
// transactions with a session lock on the same key, so no other process's
// subscriber of the group reads from the old offset in between.
func (t *batchTx) checkpoint(ctx context.Context, lockKey string) error {
	if err := t.actAsBus(ctx); err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if _, err := t.tx.ExecContext(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, lockKey); err != nil {
		t.abandon()
		return fmt.Errorf("bus: keep the group's turn: %w", err)
	}
	after := t.after
	t.after = nil
	err := t.tx.Commit()
	if err == nil {
		for _, f := range after {
			f()
		}
		t.applied, t.limited = 0, false
		var tx *sql.Tx
		if tx, err = t.conn.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted}); err == nil {
			t.tx = tx
			_, err = tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0)), pg_advisory_unlock(hashtextextended($1, 0))`, lockKey)
		}
	}
	if err != nil {
		// The subscriber's Commit or Rollback finds the batch ended; its
		// messages after the checkpoint come again. The connection is
		// discarded, not pooled: its session may still hold the lock.
		t.done = true
		t.in, t.after, t.pending = nil, nil, nil
		_ = t.tx.Rollback()
		_ = t.conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = t.conn.Close()
		return fmt.Errorf("bus: go on after committing the batch so far: %w", err)
	}
	return nil
}

// applyInBatchOnce is one attempt of applyInBatch; t.mu is held.
func (b *Bus) applyInBatchOnce(ctx context.Context, h *handler, md Metadata, ev Event, t *batchTx) (err error) {
	hooks := len(t.after)
	t.pending, t.duplicate, t.opened = nil, false, false
	defer func() {
		unsent := t.pending != nil
		t.pending, t.duplicate = nil, false
		if err == nil || t.done {
			return
		}
		if len(t.after) >= hooks {
			t.after = t.after[:hooks] // the undone effect's
		}
		switch {
		case !t.opened && unsent:
			// Nothing of this message reached the database (its handler
			// failed before its first statement): the open savepoint is
			// the previous message's, and stays.
			return
		case !t.opened:
			// Whether this message's savepoint exists is unknown: roll the
			// whole batch back; its messages come again and the inbox
			// sorts them out.
			t.abandon()
			return
		}
		// Undo even when ctx has ended: a savepoint left open would commit
		// half an effect with the rest of the batch.
		if _, uerr := t.tx.ExecContext(context.WithoutCancel(ctx), h.inBatch.undo); uerr != nil {
			t.abandon()
			err = errors.Join(err, fmt.Errorf("roll back the handler's savepoint: %w", uerr))
		}
		t.in = nil
	}()
	gtx := h.consumer.DB.Session(&gorm.Session{Context: ctx, NewDB: true})
	gtx.Statement.ConnPool = batchConn{t}
	if t.in == h.inBatch {
		// The savepoint and the mark go with the handler's first statement
		// (or on their own before a query, or after a handler that wrote
		// nothing); a message found applied is rolled back whatever its
		// handler made of the news.
		t.pending = &pendingMark{handler: h.name, messageID: md.MessageID}
		err := b.runHandler(ctx, h, md, ev, gtx)
		if err == nil {
			err = t.sendMark(ctx)
		}
		if t.duplicate {
			return errDuplicate
		}
		return err
	}
	if err := t.actAsBus(ctx); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, h.inBatch.enter); err != nil {
		t.abandon()
		return fmt.Errorf("enter the handler's savepoint: %w", err)
	}
	t.opened = true
	t.in = h.inBatch
	return b.applyIn(ctx, h, md, ev, gtx)
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
