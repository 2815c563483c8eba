package bus

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// TestPublish_NotifiesOtherProcessesAfterCommitOnly: a publish in a
// transaction of a db.Gorm handle sends no NOTIFY while the transaction is
// open, none when it rolls back, and one naming the topic and this process
// once it commits.
func TestPublish_NotifiesOtherProcessesAfterCommitOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		t.Fatal(err)
	}
	next := func(within time.Duration) (string, bool) {
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		n, err := conn.WaitForNotification(wctx)
		if err != nil {
			return "", false
		}
		return n.Payload, true
	}
	want := thingHappened{}.EventName() + " " + b.notify.origin

	errRollback := errors.New("roll back")
	err = e.mod.Transaction(func(tx *gorm.DB) error {
		if err := b.Publish(ctx, tx, thingHappened{Key: "rolled-back"}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	err = e.mod.Transaction(func(tx *gorm.DB) error {
		if err := b.Publish(ctx, tx, thingHappened{Key: "committed"}); err != nil {
			return err
		}
		if p, ok := next(300 * time.Millisecond); ok {
			t.Errorf("NOTIFY %q before the commit (or for the rolled-back publish)", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := next(10 * time.Second)
	if !ok || p != want {
		t.Fatalf("after the commit: NOTIFY %q (%v), want %q", p, ok, want)
	}
	if p, ok := next(300 * time.Millisecond); ok {
		t.Fatalf("a second NOTIFY %q for one commit", p)
	}
}

// TestListener_SkipsItsOwnProcess: a NOTIFY from this process wakes
// nobody (Publish woke its subscribers already); one from another process,
// or without an origin (sent inside a plain transaction), wakes the
// topic's subscribers.
func TestListener_SkipsItsOwnProcess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	ch := b.wake.channel("some.topic.v1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.wake.listen(ctx, e.url, b.notify.origin, slogDiscard(), nil)
	waitForListener(t, e.admin)
	drain := func() {
		for {
			select {
			case <-ch:
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	drain() // the wake-up every subscriber gets when the listener connects
	for _, c := range []struct {
		payload string
		wakes   bool
	}{
		{"some.topic.v1 " + b.notify.origin, false},
		{"some.topic.v1 another-process", true},
		{"some.topic.v1", true},
	} {
		if _, err := e.admin.Exec(`SELECT pg_notify($1, $2)`, notifyChannel, c.payload); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			if !c.wakes {
				t.Errorf("NOTIFY %q woke the subscriber", c.payload)
			}
		case <-time.After(2 * time.Second):
			if c.wakes {
				t.Errorf("NOTIFY %q did not wake the subscriber", c.payload)
			}
		}
		drain()
	}
}

// TestSubscriber_MessageHiddenByXminInAPartialBatchIsNotStranded: a batch
// reads M0 but not M1, which is committed (its wake-up already consumed by
// the wake that started this batch) yet hidden because an older
// transaction holding an id (any transaction on the cluster) was still
// open. That transaction ends while M0 is handled and sends no wake-up for
// this topic. The subscriber queries again at once after every batch, and
// finds M1 then; a subscriber that waited for a wake-up after a batch that
// was not full (tried in 1ecf740, reverted) left M1 to the safety poll
// (here 20 s).
func TestSubscriber_MessageHiddenByXminInAPartialBatchIsNotStranded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{SafetyPoll: 20 * time.Second})
	ctx := context.Background()
	gate := make(chan struct{})
	var old *sql.Tx
	Handle(b, "testmod.xmin", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		switch ev.Key {
		case "A":
			<-gate // before any write: the batch holds no transaction id
		case "M0":
			if err := old.Commit(); err != nil { // sends no wake-up for this topic
				return err
			}
		}
		return record("testmod.xmin")(ctx, tx, ev)
	})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The subscriber is busy with A while M0 and M1 are committed; their
	// wake-ups coalesce in the one-slot channel.
	published := make(chan error, 1)
	go func() {
		published <- e.mod.Transaction(func(tx *gorm.DB) error { return b.Publish(ctx, tx, thingHappened{Key: "A"}) })
	}()
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // A is in the handler
	e.publish(b, ctx, "M0")
	var err error
	if old, err = e.admin.BeginTx(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	e.publish(b, ctx, "M1") // its transaction id is newer than old's: hidden until old ends
	close(gate)
	e.waitFor("M0", func() bool { return e.effects("M0") == 1 })
	deadline := time.Now().Add(3 * time.Second)
	for e.effects("M1") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("M1, committed and visible, was not read within 3 s: the subscriber waits for the safety poll")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSubscriber_MoreToReadAnswersAsAPollWould: the one statement that
// stands in for a poll after a batch (moreToRead) says yes whenever a poll
// would read a message (or a message committed behind an older open
// transaction would be stranded until the safety poll), and no once the
// group's offset is past every message and while a message is hidden
// behind an older transaction, as a poll would find nothing then.
func TestSubscriber_MoreToReadAnswersAsAPollWould(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{SafetyPoll: 20 * time.Second})
	ctx := context.Background()
	gate := make(chan struct{})
	Handle(b, "testmod.more", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if ev.Key == "M2" {
			<-gate // in the batch, before its offset is written
		}
		return record("testmod.more")(ctx, tx, ev)
	})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	more := moreToRead(b.db, thingHappened{}.EventName(), "testmod.more")
	ask := func() bool {
		t.Helper()
		m, err := more(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	e.publish(b, ctx, "M1")
	e.waitFor("M1 applied and its offset written", func() bool { return e.effects("M1") == 1 && !ask() })

	old, err := e.admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Rollback()
	if _, err := old.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	e.publish(b, ctx, "M2") // newer than old: no poll reads it until old ends
	if ask() {
		t.Error("moreToRead says yes to a message that a poll cannot read yet (behind an older open transaction)")
	}
	if err := old.Commit(); err != nil {
		t.Fatal(err)
	}
	// M2 is readable now, and stays unread (its batch waits at the gate).
	// The horizon is the whole server's: another database's transaction
	// (other test packages share the server) may hold it a moment longer,
	// so the answer must turn yes, not at this very instant.
	e.waitFor("moreToRead to say yes to a message a poll would read (else the subscriber leaves it to the safety poll)", ask)
	close(gate)
	e.waitFor("M2 applied and its offset written", func() bool { return e.effects("M2") == 1 && !ask() })
}
