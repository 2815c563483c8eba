package bus

import (
	"context"
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
	go b.wake.listen(ctx, e.url, b.notify.origin, slogDiscard())
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
