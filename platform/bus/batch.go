package bus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// Planning and applying a batch: whether a consumer's handlers can run in
// the subscriber's batch transaction (planInBatch), and running one
// message there (applyInBatch), with a checkpoint when it waits on a lock
// that the batch's earlier messages may be in the way of. The package
// documentation (doc.go) tells why; batchtx.go adapts the transaction to
// its users.

// errBatchEnded means the subscriber finished the batch (it stopped waiting
// for this message): the message is applied on its own instead.
var errBatchEnded = errors.New("bus: the subscriber's batch has ended")

// inBatch holds the statements that switch a batch transaction to a
// consuming module's role and back.
type inBatch struct {
	// enter opens savepoint bus_apply and acts as the module.
	enter string
	// leave releases the savepoint and acts as the bus again.
	leave string
	// undo rolls the savepoint back and acts as the bus again.
	undo string
	// role is the module's role the handler's statements act as: their
	// statement spans name it, not the bus's pool's (db.ActingAs).
	role string
	// leaveSteps is leave one statement each, for a pipeline (which
	// takes one statement per query) ending with a statement of the bus's;
	// nil where the module's role may not use the bus's schema (pgx
	// prepares a pipeline's statements before it runs any, so as the
	// module).
	leaveSteps []string
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
		enter:      "SAVEPOINT bus_apply; " + switchTo(mod),
		leave:      "RELEASE SAVEPOINT bus_apply; " + switchTo(bus),
		undo:       "ROLLBACK TO SAVEPOINT bus_apply; RELEASE SAVEPOINT bus_apply; " + switchTo(bus),
		role:       mod.role,
		leaveSteps: []string{"RELEASE SAVEPOINT bus_apply", switchTo(bus)},
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
	// The offset write is pipelined with the switch back to the bus only
	// where the module's role may look into the bus's schema (publishers
	// may): pgx prepares it before the pipeline runs, as the module.
	var usage bool
	if err := tx.QueryRowContext(ctx, `SELECT has_schema_privilege($1, $2, 'USAGE')`, mod.role, Schema).Scan(&usage); err != nil {
		return nil, fmt.Errorf("bus: the rights of module %s: %w", c.Module, err)
	}
	if !usage {
		p.leaveSteps = nil
	}
	return p, nil
}

// switchTo acts as s for the rest of the transaction: its role and its
// search path, in one statement (set_config('role', …, true) is SET LOCAL
// ROLE, with the same membership check; as two statements they were two
// of the bus's per-message statements, twice per message).
func switchTo(s sessionIdentity) string {
	return "SELECT set_config('role', " + quoteLiteral(s.role) + ", true), set_config('search_path', " + quoteLiteral(s.searchPath) + ", true)"
}

// quoteLiteral is v as an SQL string literal (standard_conforming_strings,
// PostgreSQL's default since 9.1: a backslash is an ordinary character).
func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

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
	ctx = db.ActingAs(ctx, h.inBatch.role)
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
	t.pending, t.duplicate, t.opened, t.markAfter = nil, false, false, false
	defer func() {
		unsent := t.pending != nil
		t.pending, t.duplicate, t.markAfter = nil, false, false
		if err == nil || t.done {
			return
		}
		if len(t.after) >= hooks {
			t.after = t.after[:hooks] // the undone effect's
		}
		switch {
		case !t.opened && unsent:
			// Nothing of this message reached the database (its handler
			// failed before its first statement): the open savepoint, if
			// any, is the previous message's, and stays.
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
	if t.in != nil && t.in != h.inBatch {
		if err := t.actAsBus(ctx); err != nil {
			return err
		}
	}
	// The savepoint and the mark go with the handler's first statement
	// (or on their own before a query, or after a handler that ran no
	// statement); a message found applied is rolled back whatever its
	// handler made of the news. The first message of a transaction
	// (t.in == nil) enters its savepoint and the module's role in the same
	// round trip; before a query it is looked up there and marked after
	// its handler (sendMark), so that a handler that reads first takes no
	// transaction id until it writes.
	t.pending = &pendingMark{handler: h.name, messageID: md.MessageID}
	if t.in == nil {
		t.pending.enter = h.inBatch
	}
	t.markAfter = false
	err = b.runHandler(ctx, h, md, ev, gtx)
	if err == nil {
		err = t.sendMark(ctx)
	}
	if err == nil && t.markAfter && !t.duplicate {
		err = t.sendMarkAfter(ctx, h.name, md.MessageID)
	}
	if t.duplicate {
		return errDuplicate
	}
	return err
}
