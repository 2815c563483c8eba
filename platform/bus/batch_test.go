package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"
)

// seen is what a handler observed about the transaction it ran in.
type seen struct {
	Key         string
	Txid        int64
	CurrentUser string
	BusReadable bool
}

// observe records, per message, the transaction id and role the handler
// ran with and whether it could read the bus's own tables.
func (e *env) observe(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
	var s seen
	s.Key = ev.Key
	if err := tx.Raw(`SELECT txid_current(), current_user`).Row().Scan(&s.Txid, &s.CurrentUser); err != nil {
		return err
	}
	err := tx.Transaction(func(probe *gorm.DB) error {
		var n int64
		return probe.Raw(`SELECT count(*) FROM bus.dead_letters`).Scan(&n).Error
	})
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		s.BusReadable = true
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
	default:
		return fmt.Errorf("probe: %w", err)
	}
	return tx.Exec(`INSERT INTO observed (key, txid, current_user_name, bus_readable) VALUES (?, ?, ?, ?)`,
		s.Key, s.Txid, s.CurrentUser, s.BusReadable).Error
}

func (e *env) observed() []seen {
	e.t.Helper()
	var rows []seen
	err := e.mod.Raw(`SELECT key, txid, current_user_name AS current_user, bus_readable FROM observed ORDER BY key`).Scan(&rows).Error
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// TestBatch_HandlersRunInTheSubscribersTransactionAsTheirModule: messages
// read in one batch are applied in that batch's one transaction (one
// commit), each acting as the consuming module's role, which still cannot
// read the bus's tables; with SeparateTransactions (the bus's or the
// consumer's) each gets its own.
func TestBatch_HandlersRunInTheSubscribersTransactionAsTheirModule(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"in-batch", "bus-separate", "consumer-separate"} {
		separate := mode != "in-batch"
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if err := e.mod.Exec(`CREATE TABLE observed (key text PRIMARY KEY, txid bigint NOT NULL, current_user_name text NOT NULL, bus_readable bool NOT NULL)`).Error; err != nil {
				t.Fatal(err)
			}
			b := e.bus(Config{SeparateTransactions: mode == "bus-separate"})
			c := e.consumer()
			c.SeparateTransactions = mode == "consumer-separate"
			Handle(b, "testmod.observe", c, e.observe)
			// Published before the subscriber starts: its first read takes
			// all of them in one batch.
			const n = 8
			for i := range n {
				e.publish(b, context.Background(), fmt.Sprintf("m%d", i))
			}
			if err := b.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			e.waitFor("every message", func() bool { return len(e.observed()) == n })
			txids := map[int64]bool{}
			for _, s := range e.observed() {
				txids[s.Txid] = true
				if s.CurrentUser != "modshop_testmod" {
					t.Errorf("%s ran as %q, want the module's role modshop_testmod", s.Key, s.CurrentUser)
				}
				if s.BusReadable {
					t.Errorf("%s could read bus.dead_letters: the wall is down", s.Key)
				}
			}
			// In a batch, messages share its transaction (usually all n in
			// one; an older transaction elsewhere on the cluster can hide
			// the newest messages from the first read, splitting them).
			if separate && len(txids) != n {
				t.Fatalf("%d messages ran in %d transactions, want one each", n, len(txids))
			}
			if !separate && len(txids) >= n {
				t.Fatalf("%d messages ran in %d transactions, want them to share the batch's", n, len(txids))
			}
		})
	}
}

// TestBatch_AFailingMessageLeavesTheRestOfItsBatch: in one batch, a handler
// that writes and then hits an SQL error (which aborts a transaction) has
// its write undone and is retried, then parked; the messages before and
// after it in the same batch are applied once, and the subscriber's own
// writes (offset, dead letter) are made as the bus.
func TestBatch_AFailingMessageLeavesTheRestOfItsBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{MaxAttempts: 3})
	attempts := 0
	Handle(b, "testmod.half", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if err := tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'half')`, ev.Key).Error; err != nil {
			return err
		}
		if ev.Key == "bad" {
			attempts++
			return tx.Exec(`SELECT 1 / 0`).Error
		}
		return nil
	})
	for _, k := range []string{"a", "bad", "c"} {
		e.publish(b, context.Background(), k)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the messages around the bad one", func() bool { return e.effects("a") == 1 && e.effects("c") == 1 })
	e.waitFor("the bad one parked", func() bool {
		letters, err := b.DeadLetters(context.Background(), false, 10)
		return err == nil && len(letters) == 1
	})
	if n := e.effects("bad"); n != 0 {
		t.Fatalf("the failing handler's first write survived %d times", n)
	}
	if attempts != 3 {
		t.Fatalf("the bad message was tried %d times, want 3", attempts)
	}
	// Nothing is delivered again: the batch's offset was committed.
	e.publish(b, context.Background(), "after")
	e.waitFor("the next message", func() bool { return e.effects("after") == 1 })
	if e.effects("a") != 1 || e.effects("c") != 1 || e.effects("bad") != 0 {
		t.Fatalf("effects after the next message: a=%d c=%d bad=%d", e.effects("a"), e.effects("c"), e.effects("bad"))
	}
}

// TestBatch_DuplicatesInOneBatchApplyOnce: the same message twice in one
// batch, behind another message (so both copies take the pipelined path),
// is applied once, whether its handler starts with a write (the mark goes
// with it) or with a read (the mark goes first and the read learns of the
// duplicate).
func TestBatch_DuplicatesInOneBatchApplyOnce(t *testing.T) {
	t.Parallel()
	for _, first := range []string{"write", "read"} {
		t.Run(first+"-first", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.bus(Config{})
			Handle(b, "testmod.dup", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
				if first == "read" {
					var n int64
					if err := tx.Raw(`SELECT count(*) FROM effects WHERE key = ?`, ev.Key).Scan(&n).Error; err != nil {
						return err
					}
				}
				return record("testmod.dup")(ctx, tx, ev)
			})
			e.runTwiceInOneBatch(b)
			if n := e.effects("twice"); n != 1 {
				t.Fatalf("a message twice in one batch was applied %d times", n)
			}
			if n := e.effects("before"); n != 1 {
				t.Fatalf("the message before: %d", n)
			}
		})
	}
}

// TestBatch_AHandlerFailingBeforeItsFirstStatementKeepsThePreviousEffect:
// in one batch, a message whose handler fails before it touches the
// database (and is retried) must not roll back the message before it,
// whose savepoint is still the open one.
func TestBatch_AHandlerFailingBeforeItsFirstStatementKeepsThePreviousEffect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	var early atomic.Int32
	Handle(b, "testmod.early", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if ev.Key == "fails-early" && early.Add(1) <= 2 {
			return errors.New("refused before any statement")
		}
		return record("testmod.early")(ctx, tx, ev)
	})
	ctx := context.Background()
	for _, k := range []string{"ok-first", "fails-early", "ok-last"} {
		e.publish(b, ctx, k)
	}
	if err := b.Start(ctx); err != nil { // all three in one batch
		t.Fatal(err)
	}
	e.waitFor("the last message", func() bool { return e.effects("ok-last") == 1 })
	for _, k := range []string{"ok-first", "fails-early", "ok-last"} {
		if n := e.effects(k); n != 1 {
			t.Errorf("%s applied %d times, want 1", k, n)
		}
	}
	var marks int64
	if err := e.mod.Raw(`SELECT count(*) FROM processed_messages WHERE handler = 'testmod.early'`).Scan(&marks).Error; err != nil || marks != 3 {
		t.Fatalf("inbox marks: %d (%v), want 3", marks, err)
	}
}

// TestBatch_ADuplicateWhoseHandlerPublishesFirstPublishesNothing: the
// second copy of a message, in the same batch, whose handler's first
// database call is a publish: the publish is undone with the duplicate.
func TestBatch_ADuplicateWhoseHandlerPublishesFirstPublishesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	Handle(b, "testmod.relay", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if err := b.Publish(ctx, tx, thingFollowed{Key: ev.Key}); err != nil {
			return err
		}
		return record("testmod.relay")(ctx, tx, ev)
	})
	e.runTwiceInOneBatch(b)
	var relayed int64
	err := e.admin.QueryRow(`SELECT count(*) FROM ` + messagesTable(thingFollowed{}.EventName()) + ` WHERE payload->>'key' = 'twice'`).Scan(&relayed)
	if err != nil || relayed != 1 {
		t.Fatalf("the duplicate's handler published %d events (%v), want 1 in all", relayed, err)
	}
}

// runTwiceInOneBatch publishes "before", the message "twice" twice (same
// id) and "after", starts b, whose subscriber reads them in one batch (so
// both copies of "twice" follow another message), and waits for "after".
func (e *env) runTwiceInOneBatch(b *Bus) {
	e.t.Helper()
	ctx := context.Background()
	e.publish(b, ctx, "before")
	msg, err := newMessage(ctx, thingHappened{Key: "twice"}, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	e.publishTwice(b, msg)
	e.publish(b, ctx, "after")
	if err := b.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.waitFor("the message after the duplicates", func() bool { return e.effects("after") == 1 })
}

// TestBatch_BatchesLockingRowsInOppositeOrdersDoNotDeadlock: two handlers
// on two topics, each batch of two messages locking rows x and y in
// opposite orders (the first messages of both batches hold their rows
// together). A later message of a batch that has to wait commits the
// batch so far (checkpoint) and runs first in a fresh transaction, so
// neither batch waits for the other forever: no handler fails, nothing is
// retried or parked, every effect is applied once.
func TestBatch_BatchesLockingRowsInOppositeOrdersDoNotDeadlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.mod.Exec(`CREATE TABLE counters (name text PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES ('x', 0), ('y', 0)`).Error; err != nil {
		t.Fatal(err)
	}
	b := e.bus(Config{MaxAttempts: 3})
	// Both first messages (keys ending in 1) wait here until the other has
	// its row.
	var arrived sync.WaitGroup
	arrived.Add(2)
	var once [2]sync.Once
	bump := func(handler string, side int) func(ctx context.Context, tx *gorm.DB, key string) error {
		return func(ctx context.Context, tx *gorm.DB, key string) error {
			row, _, _ := strings.Cut(key, ":")
			if err := tx.Exec(`UPDATE counters SET n = n + 1 WHERE name = ?`, row).Error; err != nil {
				return err
			}
			if strings.HasSuffix(key, "1") {
				once[side].Do(arrived.Done)
				waitGroupFor(&arrived, 10*time.Second)
			}
			return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, ?)`, key, handler).Error
		}
	}
	forward, backward := bump("forward", 0), bump("backward", 1)
	Handle(b, "testmod.forward", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		return forward(ctx, tx, ev.Key)
	})
	Handle(b, "testmod.backward", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingFollowed) error {
		return backward(ctx, tx, ev.Key)
	})
	// Published before the subscribers start: each reads its two in one batch.
	err := e.mod.Transaction(func(tx *gorm.DB) error {
		return b.Publish(context.Background(), tx,
			thingHappened{Key: "x:a1"}, thingHappened{Key: "y:a2"},
			thingFollowed{Key: "y:b1"}, thingFollowed{Key: "x:b2"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.waitFor("all four effects", func() bool {
		var n int64
		return e.mod.Raw(`SELECT count(*) FROM effects`).Scan(&n).Error == nil && n == 4
	})
	for _, key := range []string{"x:a1", "y:a2", "y:b1", "x:b2"} {
		if n := e.effects(key); n != 1 {
			t.Errorf("%s applied %d times, want once", key, n)
		}
	}
	var x, y int
	if err := e.mod.Raw(`SELECT (SELECT n FROM counters WHERE name = 'x'), (SELECT n FROM counters WHERE name = 'y')`).Row().Scan(&x, &y); err != nil {
		t.Fatal(err)
	}
	if x != 2 || y != 2 {
		t.Errorf("counters x = %d, y = %d, want 2 and 2", x, y)
	}
	for _, h := range []string{"testmod.forward", "testmod.backward"} {
		if n := testutil.ToFloat64(b.metrics.retried.WithLabelValues(h, kindTransient)) + testutil.ToFloat64(b.metrics.retried.WithLabelValues(h, kindPermanent)); n != 0 {
			t.Errorf("%s: %v attempts failed and were retried, want none", h, n)
		}
		if n := testutil.ToFloat64(b.metrics.deadLettered.WithLabelValues(h)); n != 0 {
			t.Errorf("%s: %v messages parked, want none", h, n)
		}
	}
	if !e.separate {
		got := testutil.ToFloat64(b.metrics.checkpoints.WithLabelValues("testmod.forward")) +
			testutil.ToFloat64(b.metrics.checkpoints.WithLabelValues("testmod.backward"))
		if got < 1 {
			t.Errorf("no batch was committed early; the two batches never waited on each other (the test's setup failed)")
		}
	}
	// Both groups still get their turn: the lock that kept a group's turn
	// across its checkpoint was let go.
	err = e.mod.Transaction(func(tx *gorm.DB) error {
		return b.Publish(context.Background(), tx, thingHappened{Key: "x:a3"}, thingFollowed{Key: "y:b3"})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the messages after", func() bool { return e.effects("x:a3") == 1 && e.effects("y:b3") == 1 })
}

// waitGroupFor waits for wg, at most d.
func waitGroupFor(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// TestBatch_ABatchThatParkedADeadLetterDoesNotCheckpoint: a batch of
// three messages: "a" is applied, "poison" fails and is parked (its dead
// letter written in the batch transaction, to commit with the offset),
// "blocked" waits on a row lock held elsewhere. Were the batch to
// checkpoint, it would commit the dead letter without the offset; the bus
// is then closed while "blocked" waits, the rest of the batch rolls back,
// and after a restart "poison" would be parked a second time. So a batch
// that parked something waits instead: after the restart there is one
// dead letter, and "a" and "blocked" are applied once.
func TestBatch_ABatchThatParkedADeadLetterDoesNotCheckpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if err := e.mod.Exec(`CREATE TABLE counters (name text PRIMARY KEY, n int NOT NULL);
		INSERT INTO counters VALUES ('x', 0)`).Error; err != nil {
		t.Fatal(err)
	}
	handler := func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		switch ev.Key {
		case "poison":
			return fmt.Errorf("cannot handle %s", ev.Key)
		case "blocked":
			if err := tx.Exec(`UPDATE counters SET n = n + 1 WHERE name = 'x'`).Error; err != nil {
				return err
			}
		}
		return record("testmod.review")(ctx, tx, ev)
	}
	first := e.bus(Config{MaxAttempts: 1, CloseTimeout: 200 * time.Millisecond})
	Handle(first, "testmod.review", e.consumer(), handler)
	// Published before the subscriber starts: one batch.
	for _, k := range []string{"a", "poison", "blocked"} {
		e.publish(first, ctx, k)
	}
	// Someone else holds row x.
	holder := e.mod.Begin()
	if err := holder.Exec(`SELECT 1 FROM counters WHERE name = 'x' FOR UPDATE`).Error; err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The holder's transaction id hides newer messages from every
	// subscriber on the server: keep it short.
	e.waitFor("blocked to wait on row x", func() bool {
		var n int
		return e.admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n) == nil && n > 0
	})
	time.Sleep(20 * time.Millisecond) // well past the 5 ms lock limit, were it set
	_ = first.Close()                 // cut off past CloseTimeout
	if n := testutil.ToFloat64(first.metrics.checkpoints.WithLabelValues("testmod.review")); n != 0 {
		t.Errorf("the batch checkpointed %v times after parking a dead letter, want none", n)
	}
	holder.Rollback()

	second := e.bus(Config{MaxAttempts: 1})
	Handle(second, "testmod.review", e.consumer(), handler)
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the blocked message", func() bool { return e.effects("blocked") == 1 })
	time.Sleep(200 * time.Millisecond)
	if n := e.effects("a"); n != 1 {
		t.Errorf("a applied %d times, want once", n)
	}
	letters, err := second.DeadLetters(ctx, false, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 1 {
		for _, d := range letters {
			t.Logf("dead letter %d: message %s, payload %s, failed at %s", d.ID, d.MessageID, d.Payload, d.FailedAt.Format(time.RFC3339Nano))
		}
		t.Fatalf("one poison message parked %d times, want once", len(letters))
	}
}
