package bus

import (
	"context"
	"database/sql"
	"log/slog"
	neturl "net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for the test's own connection
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/testkit"
)

// retryRow is a group's retry state as bus.consumer_groups holds it.
type retryRow struct {
	since   sql.NullTime
	lastErr sql.NullString
	retries int64
}

func (e *env) retryRow(group string) retryRow {
	e.t.Helper()
	var r retryRow
	err := e.admin.QueryRow(`SELECT retrying_since, last_error, retries FROM bus.consumer_groups WHERE consumer_group = $1`, group).
		Scan(&r.since, &r.lastErr, &r.retries)
	if err != nil {
		e.t.Fatalf("consumer group %s: %v", group, err)
	}
	return r
}

// idleInTransaction counts the connections to the test's database (the
// bus's, which log in as the test's user and act as modshop_bus, and the
// module's) that hold a transaction open without running a statement.
func (e *env) idleInTransaction() int {
	e.t.Helper()
	var n int
	err := e.admin.QueryRow(`SELECT count(*) FROM pg_stat_activity
		 WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`).Scan(&n)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (b *Bus) retried(handler, kind string) float64 {
	return testutil.ToFloat64(b.metrics.retried.WithLabelValues(handler, kind))
}

// A handler that fails transiently many more times than MaxAttempts is
// retried until it succeeds: applied once, no dead letter, the messages
// behind it wait for it (the group keeps its order), the retries are
// counted as transient and the group's row shows it retrying meanwhile,
// and no transaction is held open while the group waits.
func TestHandle_TransientFailuresAreRetriedUntilTheySucceedInOrder(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		if err := e.mod.Exec(`CREATE TABLE applied (seq bigserial PRIMARY KEY, key text NOT NULL)`).Error; err != nil {
			t.Fatal(err)
		}
		// Pauses long enough that a look at pg_stat_activity right after
		// a failure falls inside one.
		b := e.bus(Config{MaxAttempts: 3, TransientBackoff: 400 * time.Millisecond, TransientBackoffMax: 800 * time.Millisecond})
		const name = "testmod.blinking"
		var failures atomic.Int32
		failed := make(chan struct{}, 100)
		var healed atomic.Bool
		Handle(b, name, e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if err := tx.Exec(`INSERT INTO applied (key) VALUES (?)`, ev.Key).Error; err != nil {
				return err
			}
			if ev.Key == "blinking" && !healed.Load() {
				failures.Add(1)
				failed <- struct{}{}
				// A real serialization failure, after a write: the write
				// must vanish, and the transaction must not stay aborted.
				return tx.Exec(`DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$`).Error
			}
			return nil
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, k := range []string{"first", "blinking", "second", "third"} {
			e.publish(b, ctx, k)
		}
		const want = 7 // more than MaxAttempts
		for i := range want {
			select {
			case <-failed:
			case <-time.After(30 * time.Second):
				t.Fatalf("the handler failed %d times, then was not tried again", i)
			}
			if i == want-2 {
				// Just failed: the group pauses now, with nothing open.
				time.Sleep(100 * time.Millisecond)
				if n := e.idleInTransaction(); n != 0 {
					t.Errorf("%d bus connections idle in transaction while the group waits", n)
				}
			}
		}
		e.waitFor("the retry state in bus.consumer_groups", func() bool {
			r := e.retryRow(name)
			return r.since.Valid && r.retries >= 2 && strings.Contains(r.lastErr.String, "40001")
		})
		if c := e.consumerStats(b, name); c.RetryingSince == nil || c.LastError == nil || !strings.Contains(*c.LastError, "40001") || c.Retries < 2 {
			t.Errorf("the overview shows %+v, want the group retrying", c)
		}
		if n := e.countApplied("second") + e.countApplied("third"); n != 0 {
			t.Fatalf("messages behind the failing one were applied (%d) before it", n)
		}
		if dl, _ := b.DeadLetters(ctx, true, 10); len(dl) != 0 {
			t.Fatalf("a transient failure was dead-lettered: %+v", dl)
		}
		healed.Store(true)
		e.waitFor("the last message", func() bool { return e.countApplied("third") == 1 })

		var order []string
		if err := e.mod.Raw(`SELECT key FROM applied ORDER BY seq`).Scan(&order).Error; err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(order, ","); got != "first,blinking,second,third" {
			t.Errorf("applied in the order %s, want first,blinking,second,third, each once", got)
		}
		if dl, _ := b.DeadLetters(ctx, true, 10); len(dl) != 0 {
			t.Errorf("dead letters: %+v, want none", dl)
		}
		if n := b.retried(name, kindTransient); n < want {
			t.Errorf("transient retries counted: %v, want at least %d", n, want)
		}
		if n := b.retried(name, kindPermanent); n != 0 {
			t.Errorf("permanent retries counted: %v, want 0", n)
		}
		e.waitFor("the retry state cleared", func() bool {
			r := e.retryRow(name)
			return !r.since.Valid && !r.lastErr.Valid && r.retries == 0
		})
		if c := e.consumerStats(b, name); c.RetryingSince != nil || c.LastError != nil || c.Retries != 0 {
			t.Errorf("the overview shows %+v after the recovery, want no retry state", c)
		}
	})
}

func (e *env) consumerStats(b *Bus, handler string) ConsumerStats {
	e.t.Helper()
	topics, err := b.Overview(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, t := range topics {
		for _, c := range t.Consumers {
			if c.Handler == handler {
				return c
			}
		}
	}
	e.t.Fatalf("no consumer %s in the overview", handler)
	return ConsumerStats{}
}

func (e *env) countApplied(key string) int {
	e.t.Helper()
	var n int64
	if err := e.mod.Raw(`SELECT count(*) FROM applied WHERE key = ?`, key).Scan(&n).Error; err != nil {
		e.t.Fatal(err)
	}
	return int(n)
}

// A handler that panics, even with an error that looks transient, uses
// the message's attempts and parks it; so does a handler that marks a
// transient-looking error Permanent.
func TestHandle_PanicAndPermanentMarkUseAttemptsThenDeadLetter(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		b := e.bus(Config{MaxAttempts: 3})
		var tries sync.Map // key -> *atomic.Int32
		Handle(b, "testmod.broken", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			n, _ := tries.LoadOrStore(ev.Key, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			switch ev.Key {
			case "panics":
				panic(&pgconn.PgError{Code: "40001", Message: "looks transient"})
			case "marked":
				return Permanent(&pgconn.PgError{Code: "55P03", Message: "lock not available, for good"})
			}
			return record("testmod.broken")(ctx, tx, ev)
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		e.publish(b, ctx, "panics")
		e.publish(b, ctx, "marked")
		e.publish(b, ctx, "fine")
		e.waitFor("the message behind", func() bool { return e.effects("fine") == 1 })
		var letters []DeadLetter
		e.waitFor("two dead letters", func() bool {
			letters, _ = b.DeadLetters(ctx, false, 10)
			return len(letters) == 2
		})
		for _, d := range letters {
			if d.Attempts != 3 {
				t.Errorf("dead letter after %d attempts, want 3: %+v", d.Attempts, d)
			}
		}
		for _, k := range []string{"panics", "marked"} {
			n, _ := tries.Load(k)
			if got := n.(*atomic.Int32).Load(); got != 3 {
				t.Errorf("%s tried %d times, want 3", k, got)
			}
		}
		if n := b.retried("testmod.broken", kindTransient); n != 0 {
			t.Errorf("transient retries: %v, want 0", n)
		}
		if n := b.retried("testmod.broken", kindPermanent); n != 4 {
			t.Errorf("permanent retries: %v, want 4", n)
		}
	})
}

// The database going away while a handler runs (the connection cut, then
// refused) is a transient failure: no dead letter, and once the database
// is back the message is applied once, before the messages behind it.
// The outage is logged as one, not as an error per attempt.
func TestHandle_DatabaseOutageWhileAHandlerRunsLosesNothing(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		direct := testkit.NewDatabase(t)
		u, err := neturl.Parse(direct)
		if err != nil {
			t.Fatal(err)
		}
		proxy := testkit.NewTCPProxy(t, u.Host)
		u.Host = proxy.Addr()
		e := newEnvAt(t, u.String())
		// The test looks on a connection of its own, past the proxy.
		check, err := sql.Open("pgx", direct)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { check.Close() })
		applied := func() string {
			var keys string
			if err := check.QueryRow(`SELECT coalesce(string_agg(key, ',' ORDER BY seq), '') FROM testmod.applied`).Scan(&keys); err != nil {
				t.Fatal(err)
			}
			return keys
		}
		if err := e.mod.Exec(`CREATE TABLE applied (seq bigserial PRIMARY KEY, key text NOT NULL)`).Error; err != nil {
			t.Fatal(err)
		}
		var logged logBuffer
		b := e.bus(Config{MaxAttempts: 2, TransientBackoff: 10 * time.Millisecond, TransientBackoffMax: 100 * time.Millisecond,
			Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo}))})
		const name = "testmod.cut"
		running := make(chan struct{})
		cut := make(chan struct{})
		var once sync.Once
		Handle(b, name, e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if ev.Key == "cut" {
				once.Do(func() {
					close(running)
					<-cut
				})
			}
			return tx.Exec(`INSERT INTO applied (key) VALUES (?)`, ev.Key).Error
		})
		if err := b.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, k := range []string{"before", "cut", "after"} {
			e.publish(b, ctx, k)
		}
		<-running
		proxy.Cut()
		close(cut)
		// The outage lasts well past MaxAttempts pauses.
		e.waitFor("transient retries", func() bool { return b.retried(name, kindTransient) >= 1 })
		time.Sleep(500 * time.Millisecond)
		proxy.Restore()

		e.waitFor("the message after the outage", func() bool { return strings.HasSuffix(applied(), "after") })
		if got := applied(); got != "before,cut,after" {
			t.Errorf("applied: %s, want before,cut,after, each once", got)
		}
		var letters int
		if err := check.QueryRow(`SELECT count(*) FROM bus.dead_letters`).Scan(&letters); err != nil || letters != 0 {
			t.Errorf("dead letters: %d (%v), want none", letters, err)
		}
		if n := b.retried(name, kindPermanent); n != 0 {
			t.Errorf("permanent retries: %v, want 0", n)
		}
		e.waitFor("the recovery logged", func() bool { return strings.Contains(logged.String(), "the database is available again") })
		lines := logged.String()
		if strings.Contains(lines, "level=ERROR") {
			t.Errorf("the outage was logged as errors:\n%s", lines)
		}
		// Once when it starts; a statement that was under way before the
		// restore may start a second one, but not one per attempt.
		if n := strings.Count(lines, "level=WARN"); n < 1 || n > 2 {
			t.Errorf("%d WARN lines, want the outage's start once:\n%s", n, lines)
		}
	})
}

// A database made before the retry columns gets them when a bus starts on
// it, and a second start changes nothing.
func TestStart_AddsTheRetryColumnsToAnOlderDatabase(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.bus(Config{}) // creates the tables
	if _, err := e.admin.Exec(`ALTER TABLE bus.consumer_groups DROP COLUMN retrying_since, DROP COLUMN last_error, DROP COLUMN retries`); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.bus(Config{})
		var n int
		if err := e.admin.QueryRow(`SELECT count(*) FROM pg_attribute WHERE attrelid = 'bus.consumer_groups'::regclass
			   AND attname IN ('retrying_since', 'last_error', 'retries') AND NOT attisdropped`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("consumer_groups has %d of the 3 retry columns", n)
		}
	}
}
