package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type thingHappened struct {
	Key string `json:"key"`
}

func (thingHappened) EventName() string { return "test.thing_happened.v1" }

type thingFollowed struct {
	Key string `json:"key"`
}

func (thingFollowed) EventName() string { return "test.thing_followed.v1" }

// env is one test's world: a database with a module schema "testmod", the
// bus provisioned for it, and a table where handlers record their effects.
type env struct {
	t     *testing.T
	url   string
	admin *sql.DB
	mod   *gorm.DB
	reg   *Registry
	// separate: buses made by e.bus apply each message in its own transaction.
	separate bool
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvAt(t, testkit.NewDatabase(t))
}

// newEnvAt is newEnv on the database at url (through a testkit.TCPProxy,
// say).
func newEnvAt(t *testing.T, url string) *env {
	t.Helper()
	ctx := context.Background()
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, "testmod"); err != nil {
		t.Fatal(err)
	}
	if err := Provision(ctx, admin, "testmod"); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, url, "testmod", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	mod, err := db.Gorm(pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := mod.Exec(`CREATE TABLE effects (key text NOT NULL, handler text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`).Error; err != nil {
		t.Fatal(err)
	}
	if err := mod.Exec(`CREATE TABLE things (key text PRIMARY KEY)`).Error; err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.Register(thingHappened{}, thingFollowed{})
	_, separate := separateMode.Load(t)
	return &env{t: t, url: url, admin: admin, mod: mod, reg: reg, separate: separate}
}

// separateMode marks the tests (by *testing.T) that run with
// Config.SeparateTransactions.
var separateMode sync.Map

// bothModes runs f, in parallel, with handlers applied in the subscriber's
// batch transaction (the default) and in a transaction per message.
func bothModes(t *testing.T, f func(t *testing.T)) {
	t.Parallel()
	t.Run("in-batch", func(t *testing.T) {
		t.Parallel()
		f(t)
	})
	t.Run("separate", func(t *testing.T) {
		t.Parallel()
		separateMode.Store(t, true)
		f(t)
	})
}

func (e *env) bus(cfg Config) *Bus {
	e.t.Helper()
	cfg.DatabaseURL = e.url
	cfg.SeparateTransactions = cfg.SeparateTransactions || e.separate
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 5 * time.Millisecond
	}
	if cfg.Log == nil && os.Getenv("MODSHOP_TEST_LOG") != "" {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := New(context.Background(), cfg, e.reg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { b.Close() })
	return b
}

func (e *env) consumer() Consumer { return Consumer{Module: "testmod", DB: e.mod} }

// publish commits a business row and its event in one transaction.
func (e *env) publish(b *Bus, ctx context.Context, key string) {
	e.t.Helper()
	err := e.mod.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO things (key) VALUES (?)`, key).Error; err != nil {
			return err
		}
		return b.Publish(ctx, tx, thingHappened{Key: key})
	})
	if err != nil {
		e.t.Fatalf("publish %s: %v", key, err)
	}
}

// publishTwice writes msg to its topic twice, with the same message id.
func (e *env) publishTwice(b *Bus, msg *message.Message) {
	e.t.Helper()
	for range 2 {
		err := e.mod.Transaction(func(tx *gorm.DB) error {
			sqlTx, _ := txOf(tx)
			pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(sqlTx), wmsql.PublisherConfig{SchemaAdapter: b.schemaAdapter()}, nil)
			if err != nil {
				return err
			}
			return pub.Publish(thingHappened{}.EventName(), msg.Copy())
		})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) effects(key string) int {
	e.t.Helper()
	var n int64
	if err := e.mod.Raw(`SELECT count(*) FROM effects WHERE key = ?`, key).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// waitFor polls cond until it holds; the bound is generous, since this is
// about eventually, not about speed.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func record(handler string) func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
	return func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, ?)`, ev.Key, handler).Error
	}
}

func TestPublish_RollbackPublishesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	errBoom := errors.New("boom")
	err := e.mod.Transaction(func(tx *gorm.DB) error {
		if err := b.Publish(ctx, tx, thingHappened{Key: "rolled-back"}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("transaction: %v", err)
	}
	e.publish(b, ctx, "committed")
	// Delivery is in commit order: once the later message is applied, the
	// rolled-back one would have been too, had it been published.
	e.waitFor("the committed message", func() bool { return e.effects("committed") == 1 })
	if n := e.effects("rolled-back"); n != 0 {
		t.Fatalf("a rolled-back event was delivered %d times", n)
	}
	if err := b.Publish(ctx, e.mod, thingHappened{Key: "outside"}); !errors.Is(err, ErrNotInTransaction) {
		t.Fatalf("publish outside a transaction: %v, want ErrNotInTransaction", err)
	}
}

func TestHandle_FailsTwiceThenSucceedsAppliesOnce(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		b := e.bus(Config{MaxAttempts: 5})
		var attempts atomic.Int32
		Handle(b, "testmod.flaky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			// Write first, then fail: the failed attempts' writes must vanish.
			if err := tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'flaky')`, ev.Key).Error; err != nil {
				return err
			}
			if attempts.Add(1) <= 2 {
				// A SQL error, which aborts the transaction: it must not doom the retries.
				return tx.Exec(`SELECT 1/0`).Error
			}
			return nil
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.publish(b, context.Background(), "flaky-1")
		e.waitFor("the third attempt", func() bool { return e.effects("flaky-1") == 1 })
		time.Sleep(100 * time.Millisecond) // a wrongly repeated attempt would land now
		if n, a := e.effects("flaky-1"), attempts.Load(); n != 1 || a != 3 {
			t.Fatalf("effects %d after %d attempts, want 1 after 3", n, a)
		}
		if dl, _ := b.DeadLetters(context.Background(), true, 10); len(dl) != 0 {
			t.Fatalf("a message that succeeded was dead-lettered: %+v", dl)
		}
	})
}

func TestHandle_SameMessageDeliveredTwiceAppliesOnce(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		b := e.bus(Config{})
		Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		msg, err := newMessage(ctx, thingHappened{Key: "twice"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// The same message (same id) lands on the topic twice, as after a
		// publisher retried a commit whose answer it never got.
		e.publishTwice(b, msg)
		e.publish(b, ctx, "after")
		e.waitFor("the message after the duplicates", func() bool { return e.effects("after") == 1 })
		if n := e.effects("twice"); n != 1 {
			t.Fatalf("a message delivered twice was applied %d times", n)
		}
	})
}

func TestDeadLetters_PoisonMessageParkedAndNextOneFlows(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		b := e.bus(Config{MaxAttempts: 3})
		var fixed atomic.Bool
		var poisonAttempts atomic.Int32
		Handle(b, "testmod.picky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if ev.Key == "poison" && !fixed.Load() {
				poisonAttempts.Add(1)
				return fmt.Errorf("cannot handle %s", ev.Key)
			}
			return record("testmod.picky")(ctx, tx, ev)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		e.publish(b, ctx, "poison")
		e.publish(b, ctx, "healthy")
		e.waitFor("the message behind the poison one", func() bool { return e.effects("healthy") == 1 })
		if a := poisonAttempts.Load(); a != 3 {
			t.Fatalf("poison message tried %d times, want 3", a)
		}
		// With a transaction per message, the next message's effect
		// commits before the batch that holds the dead letter does.
		var letters []DeadLetter
		e.waitFor("the dead letter", func() bool {
			var err error
			letters, err = b.DeadLetters(ctx, false, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(letters) > 0
		})
		if len(letters) != 1 {
			t.Fatalf("open dead letters: %d, want 1", len(letters))
		}
		d := letters[0]
		if d.Topic != "test.thing_happened.v1" || d.Handler != "testmod.picky" || d.Attempts != 3 || d.Error == "" || string(d.Payload) != `{"key": "poison"}` {
			t.Fatalf("dead letter = %+v", d)
		}
		if d.Metadata[KeyEvent] != "test.thing_happened.v1" || d.Metadata[KeyCorrelationID] == "" {
			t.Fatalf("dead letter lost its metadata: %v", d.Metadata)
		}

		// Replaying before the cause is fixed fails and changes nothing.
		if _, err := b.Replay(ctx, d.ID); !errors.As(err, new(*ReplayError)) {
			t.Fatalf("replay before the fix: %v, want a ReplayError", err)
		}
		fixed.Store(true)
		got, err := b.Replay(ctx, d.ID)
		if err != nil {
			t.Fatalf("replay after the fix: %v", err)
		}
		if got.Resolution == nil || *got.Resolution != "replayed" {
			t.Fatalf("replayed letter = %+v", got)
		}
		if _, err := b.Replay(ctx, d.ID); err != nil {
			t.Fatalf("second replay: %v", err)
		}
		if n := e.effects("poison"); n != 1 {
			t.Fatalf("replaying twice applied the message %d times, want 1", n)
		}
		if open, _ := b.DeadLetters(ctx, false, 10); len(open) != 0 {
			t.Fatalf("open dead letters after replay: %d", len(open))
		}
		if err := b.Discard(ctx, 999999); !errors.Is(err, ErrDeadLetterNotFound) {
			t.Fatalf("discard unknown: %v", err)
		}
	})
}

func TestHandle_StopMidBatchAndRestartLosesAndRepeatsNothing(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		const total = 300
		slow := func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			time.Sleep(time.Millisecond)
			return record("testmod.slow")(ctx, tx, ev)
		}
		first := e.bus(Config{BatchSize: 50})
		Handle(first, "testmod.slow", e.consumer(), slow)
		// Publish before starting, so the first consumer meets a backlog.
		for i := range total {
			e.publish(first, ctx, fmt.Sprintf("k%03d", i))
		}
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitFor("some progress", func() bool { return e.countAll() >= 40 })
		if err := first.Close(); err != nil { // mid-batch
			t.Fatalf("close: %v", err)
		}
		stoppedAt := e.countAll()
		if stoppedAt >= total {
			t.Skipf("the first consumer finished all %d before it was stopped; nothing to show", total)
		}

		second := e.bus(Config{BatchSize: 50})
		Handle(second, "testmod.slow", e.consumer(), slow)
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitFor("every message", func() bool { return e.countAll() >= total })
		time.Sleep(100 * time.Millisecond)
		var distinct, all int64
		if err := e.mod.Raw(`SELECT count(DISTINCT key), count(*) FROM effects`).Row().Scan(&distinct, &all); err != nil {
			t.Fatal(err)
		}
		if distinct != total || all != total {
			t.Fatalf("after a stop at %d and a restart: %d distinct effects, %d in all; want %d and %d", stoppedAt, distinct, all, total, total)
		}
	})
}

func (e *env) countAll() int {
	var n int64
	if err := e.mod.Raw(`SELECT count(*) FROM effects`).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

func TestMetadata_HandlerEventsInheritCorrelationAndNameTheirCause(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		b := e.bus(Config{})
		var mu sync.Mutex
		var first, second Metadata
		Handle(b, "testmod.follow", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			md, _ := MessageMetadata(ctx)
			mu.Lock()
			first = md
			mu.Unlock()
			return b.Publish(ctx, tx, thingFollowed{Key: ev.Key})
		})
		Handle(b, "testmod.observe", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingFollowed) error {
			md, _ := MessageMetadata(ctx)
			mu.Lock()
			second = md
			mu.Unlock()
			return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'observe')`, ev.Key).Error
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := WithIdempotencyKey(WithCorrelationID(context.Background(), "order-42"), "idem-7")
		e.publish(b, ctx, "chain")
		e.waitFor("the follow-up event", func() bool { return e.effects("chain") == 1 })
		mu.Lock()
		defer mu.Unlock()
		if first.CorrelationID != "order-42" || first.IdempotencyKey != "idem-7" || first.Event != "test.thing_happened.v1" || first.OccurredAt.IsZero() {
			t.Fatalf("first message metadata = %+v", first)
		}
		if second.CorrelationID != "order-42" || second.CausationID != first.MessageID || second.IdempotencyKey != "idem-7" || second.MessageID == first.MessageID {
			t.Fatalf("follow-up metadata = %+v, want correlation order-42 and cause %s", second, first.MessageID)
		}
	})
}

func TestHandle_UnknownEventIsAcknowledged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err := e.mod.Transaction(func(tx *gorm.DB) error {
		msg, _ := newMessage(ctx, thingHappened{Key: "mystery"}, time.Now())
		msg.Metadata.Set(KeyEvent, "test.from_the_future.v9")
		sqlTx, _ := txOf(tx)
		pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(sqlTx), wmsql.PublisherConfig{SchemaAdapter: b.schemaAdapter()}, nil)
		if err != nil {
			return err
		}
		return pub.Publish(thingHappened{}.EventName(), msg)
	})
	if err != nil {
		t.Fatal(err)
	}
	e.publish(b, ctx, "known")
	e.waitFor("the message after the unknown one", func() bool { return e.effects("known") == 1 })
	if n := e.effects("mystery"); n != 0 {
		t.Fatalf("an unknown event was handled %d times", n)
	}
	if letters, _ := b.DeadLetters(ctx, true, 10); len(letters) != 0 {
		t.Fatalf("an unknown event was dead-lettered: %+v", letters)
	}
}

func TestRights_ModuleRolePublishesButCannotReadBusInternals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.publish(b, context.Background(), "allowed") // publishing works as the module role
	for _, q := range []string{
		`SELECT * FROM bus.dead_letters`,
		`SELECT * FROM bus."m_test.thing_happened.v1"`,
		`UPDATE bus."o_test.thing_happened.v1" SET offset_acked = 0`,
		`DELETE FROM bus."m_test.thing_happened.v1"`,
	} {
		if err := e.mod.Exec(q).Error; db.SQLState(err) != "42501" {
			t.Errorf("%s as the module role: %v, want permission denied", q, err)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestClose_HandlerInFlightFinishesAndIsNotAppliedTwice closes the bus
// while a handler is running: Close waits for it, its effect commits, and
// after a restart the redelivered message is recognised as applied.
func TestClose_HandlerInFlightFinishesAndIsNotAppliedTwice(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		entered := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		first := e.bus(Config{})
		Handle(first, "testmod.slow", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			once.Do(func() { close(entered) })
			<-release
			return record("testmod.slow")(ctx, tx, ev)
		})
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.publish(first, ctx, "in-flight")
		<-entered

		closed := make(chan error, 1)
		go func() { closed <- first.Close() }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a handler was still running", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("close: %v", err)
		}
		if n := e.effects("in-flight"); n != 1 {
			t.Fatalf("the in-flight handler's effect: %d, want 1 (it should finish)", n)
		}

		second := e.bus(Config{})
		Handle(second, "testmod.slow", e.consumer(), record("testmod.slow"))
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.publish(second, ctx, "next")
		e.waitFor("the next message", func() bool { return e.effects("next") == 1 })
		if n := e.effects("in-flight"); n != 1 {
			t.Fatalf("after restart the in-flight message was applied %d times, want 1", n)
		}
	})
}

// TestClose_HandlerPastCloseTimeoutRollsBack: a handler that outlives the
// close timeout is cut off, its transaction rolls back, and the message is
// applied once after a restart.
func TestClose_HandlerPastCloseTimeoutRollsBack(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		entered := make(chan struct{})
		var once sync.Once
		first := e.bus(Config{CloseTimeout: 100 * time.Millisecond})
		Handle(first, "testmod.stuck", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if err := record("testmod.stuck")(ctx, tx, ev); err != nil {
				return err
			}
			once.Do(func() { close(entered) })
			<-ctx.Done() // stuck until the bus gives up on it
			return ctx.Err()
		})
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.publish(first, ctx, "stuck")
		<-entered
		_ = first.Close()
		if n := e.effects("stuck"); n != 0 {
			t.Fatalf("a cut-off handler's write survived: %d", n)
		}
		second := e.bus(Config{})
		Handle(second, "testmod.stuck", e.consumer(), record("testmod.stuck"))
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitFor("the redelivered message", func() bool { return e.effects("stuck") == 1 })
	})
}

// TestHandle_SlowHandlerDoesNotHoldBackOtherTopics: a subscriber reads only
// rows older than every running transaction on the cluster, so a batch
// transaction that held a transaction id while its handler ran would stall
// every topic. Ours holds none until its final offset write.
func TestHandle_SlowHandlerDoesNotHoldBackOtherTopics(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	Handle(b, "testmod.slow", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		once.Do(func() { close(entered) })
		select {
		case <-release:
		case <-ctx.Done():
		}
		return record("testmod.slow")(ctx, tx, ev)
	})
	Handle(b, "testmod.other", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingFollowed) error {
		return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'other')`, ev.Key).Error
	})
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	e.publish(b, context.Background(), "slow")
	<-entered
	err := e.mod.Transaction(func(tx *gorm.DB) error {
		return b.Publish(context.Background(), tx, thingFollowed{Key: "other-topic"})
	})
	if err != nil {
		t.Fatal(err)
	}
	e.waitFor("the other topic's message while the slow handler runs", func() bool { return e.effects("other-topic") == 1 })
	if n := e.effects("slow"); n != 0 {
		t.Fatalf("the slow handler finished early (%d)", n)
	}
}

func TestInbox_ForgetsAppliedMessagesAfterRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.mod.Exec(inboxDDL).Error; err != nil {
		t.Fatal(err)
	}
	err := e.mod.Exec(`INSERT INTO processed_messages (handler, message_id, processed_at) VALUES
		('testmod.record', 'old', now() - interval '30 days'), ('testmod.record', 'recent', now() - interval '1 day')`).Error
	if err != nil {
		t.Fatal(err)
	}
	// More old marks than one batch deletes: the pruner goes on until none is left.
	err = e.mod.Exec(`INSERT INTO processed_messages (handler, message_id, processed_at)
		SELECT 'testmod.record', 'old-' || i, now() - interval '20 days' FROM generate_series(1, ?) AS i`, inboxPruneBatch*2+10).Error
	if err != nil {
		t.Fatal(err)
	}
	b := e.bus(Config{InboxRetention: 14 * 24 * time.Hour})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	left := func() []string {
		var ids []string
		if err := e.mod.Raw(`SELECT message_id FROM processed_messages ORDER BY message_id`).Scan(&ids).Error; err != nil {
			t.Fatal(err)
		}
		return ids
	}
	e.waitFor("the old mark to go", func() bool { return len(left()) == 1 })
	if ids := left(); ids[0] != "recent" {
		t.Fatalf("marks left: %v, want [recent]", ids)
	}
}

// TestDeadLetters_ManyHandlersParkOneCopyEach: with several handlers
// failing the same message at once, each parks exactly one dead letter and
// the bus keeps flowing (dead letters are written on the subscriber's own
// transaction, not on a connection the subscribers compete for).
func TestDeadLetters_ManyHandlersParkOneCopyEach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{MaxAttempts: 1})
	const handlers = 6
	for i := range handlers {
		name := fmt.Sprintf("testmod.h%d", i)
		Handle(b, name, e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if ev.Key == "poison" {
				return errors.New("poison")
			}
			return record(name)(ctx, tx, ev)
		})
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.publish(b, context.Background(), "poison")
	e.publish(b, context.Background(), "fine")
	e.waitFor("every handler to apply the next message", func() bool { return e.effects("fine") == handlers })
	letters, err := b.DeadLetters(context.Background(), true, 100)
	if err != nil {
		t.Fatal(err)
	}
	perHandler := map[string]int{}
	for _, d := range letters {
		perHandler[d.Handler]++
	}
	if len(letters) != handlers || len(perHandler) != handlers {
		t.Fatalf("dead letters %d over %d handlers, want one per handler: %v", len(letters), len(perHandler), perHandler)
	}
}

// TestClose_AHandlerFailureWhileClosingIsLogged: a handler that fails for
// a reason of its own while the bus closes gives its message back (it is
// applied after a restart), and its error is logged as a warning instead
// of passing for part of the shutdown.
func TestClose_AHandlerFailureWhileClosingIsLogged(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		var logs logBuffer
		entered := make(chan struct{})
		var once sync.Once
		first := e.bus(Config{Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		Handle(first, "testmod.refusing", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			once.Do(func() { close(entered) })
			<-first.closing
			return errors.New("the warehouse said no")
		})
		if err := first.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.publish(first, ctx, "refused")
		e.within("the handler to start", entered)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		var warned bool
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "the warehouse said no") {
				warned = true
			}
		}
		if !warned {
			t.Errorf("the handler's own error while closing was not logged as a warning:\n%s", logs.String())
		}

		second := e.bus(Config{})
		Handle(second, "testmod.refusing", e.consumer(), record("testmod.refusing"))
		if err := second.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitFor("the message given back, applied after the restart", func() bool { return e.effects("refused") == 1 })
	})
}

// Two processes of one module start together (the split harness's replicas
// do): each creates the module's inbox table, and neither may fail on the
// other's CREATE TABLE IF NOT EXISTS (it failed on pg_type's unique index).
func TestInbox_CreatedByProcessesStartingTogether(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	const starters = 8
	pools := make([]*gorm.DB, starters)
	for i := range pools {
		pool, err := db.OpenModule(ctx, e.url, "testmod", 1)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		if pools[i], err = db.Gorm(pool); err != nil {
			t.Fatal(err)
		}
		// A connection open before the race, so all start at once.
		if err := pools[i].Exec(`SELECT 1`).Error; err != nil {
			t.Fatal(err)
		}
	}
	for round := range 10 {
		if err := e.mod.Exec(`DROP TABLE IF EXISTS processed_messages`).Error; err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, starters)
		for _, p := range pools {
			wg.Go(func() {
				<-start
				if err := ensureInbox(ctx, p); err != nil {
					errs <- err
				}
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
		var n int
		if err := e.mod.Raw(`SELECT count(*) FROM processed_messages`).Scan(&n).Error; err != nil {
			t.Fatalf("round %d: the inbox is not there: %v", round, err)
		}
	}
}
