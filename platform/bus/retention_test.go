package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gorm.io/gorm"
)

// noPruning keeps a test's buses from pruning on their own: the test
// prunes when it means to.
const noPruning = -1

var thingTopic = thingHappened{}.EventName()

// keysLeft lists the keys of the messages still in topic's table, in the
// order subscribers read them.
func (e *env) keysLeft(topic string) []string {
	e.t.Helper()
	rows, err := e.admin.Query(`SELECT payload->>'key' FROM ` + messagesTable(topic) + ` ORDER BY transaction_id, "offset"`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	keys := []string{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			e.t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// age makes the messages of topic with the given keys (all, when none are
// given) eight days old: older than the default retention of 7 days.
func (e *env) age(topic string, keys ...string) {
	e.t.Helper()
	q := `UPDATE ` + messagesTable(topic) + ` SET created_at = created_at - interval '8 days'`
	args := []any{}
	if len(keys) > 0 {
		q += ` WHERE payload->>'key' = ANY($1)`
		args = append(args, keys)
	}
	if _, err := e.admin.Exec(q, args...); err != nil {
		e.t.Fatal(err)
	}
}

// forget makes a consumer group last seen 15 days ago: longer than the
// default group expiry of 14 days, as if no subscriber of it had run since.
func (e *env) forget(topic, group string) {
	e.t.Helper()
	res, err := e.admin.Exec(`UPDATE bus.consumer_groups SET last_seen = now() - interval '15 days' WHERE topic = $1 AND consumer_group = $2`, topic, group)
	if err != nil {
		e.t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		e.t.Fatalf("consumer group %s of %s was never seen", group, topic)
	}
}

// stats returns what b's overview says about topic and one of its groups.
func (e *env) stats(b *Bus, topic, group string) (TopicStats, ConsumerStats) {
	e.t.Helper()
	all, err := b.Overview(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ts := range all {
		if ts.Topic != topic {
			continue
		}
		for _, cs := range ts.Consumers {
			if cs.Handler == group {
				return ts, cs
			}
		}
		return ts, ConsumerStats{Handler: "(none)", Lag: -1}
	}
	e.t.Fatalf("the overview lacks topic %s", topic)
	return TopicStats{}, ConsumerStats{}
}

// caughtUp waits until group has acknowledged everything on topic.
func (e *env) caughtUp(b *Bus, topic, group string) {
	e.t.Helper()
	e.waitFor(group+" to acknowledge everything", func() bool {
		_, cs := e.stats(b, topic, group)
		return cs.Handler == group && cs.Lag == 0
	})
}

// within waits for ch to close, as long as waitFor would.
func (e *env) within(what string, ch <-chan struct{}) {
	e.t.Helper()
	e.waitFor(what, func() bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	})
}

func (e *env) prune(b *Bus) map[string]int64 {
	e.t.Helper()
	pruned, ran, err := b.pruneMessages(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if !ran {
		e.t.Fatal("the prune did not run")
	}
	return pruned
}

// TestPrune_DeletesOnlyOldMessagesThatEveryActiveGroupHasPassed: of six
// messages, four older than the retention. A group that stopped after the
// second holds back everything from there while it counts as active; once
// it has not been seen for longer than the group expiry it holds back
// nothing, and every process's overview shows it inactive. Messages newer
// than the retention stay although every group has read them; published
// counts stay totals; the metric counts what was pruned.
func TestPrune_DeletesOnlyOldMessagesThatEveryActiveGroupHasPassed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()

	behind := e.bus(Config{PruneInterval: noPruning})
	Handle(behind, "testmod.behind", e.consumer(), record("testmod.behind"))
	if err := behind.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(behind, ctx, "k1")
	e.publish(behind, ctx, "k2")
	e.caughtUp(behind, thingTopic, "testmod.behind")
	if err := behind.Close(); err != nil {
		t.Fatal(err)
	}

	ahead := e.bus(Config{PruneInterval: noPruning})
	Handle(ahead, "testmod.ahead", e.consumer(), record("testmod.ahead"))
	if err := ahead.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k3", "k4", "k5", "k6"} {
		e.publish(ahead, ctx, k)
	}
	e.caughtUp(ahead, thingTopic, "testmod.ahead")
	e.age(thingTopic, "k1", "k2", "k3", "k4")

	// Staff's process: no handlers of its own, the same view.
	reg := prometheus.NewRegistry()
	staff := e.bus(Config{PruneInterval: noPruning, Metrics: reg})

	if got := e.prune(staff)[thingTopic]; got != 1 {
		t.Errorf("pruned %d while testmod.behind is active, want 1 (k1)", got)
	}
	if left := e.keysLeft(thingTopic); !slices.Equal(left, []string{"k2", "k3", "k4", "k5", "k6"}) {
		t.Fatalf("left while testmod.behind is active and at k2: %v, want k2..k6", left)
	}
	if _, cs := e.stats(staff, thingTopic, "testmod.behind"); !cs.Active || cs.LastSeen == nil || cs.Lag != 4 || cs.LastProcessed == nil {
		t.Fatalf("overview of the active group behind: %+v", cs)
	}

	e.forget(thingTopic, "testmod.behind")
	if got := e.prune(staff)[thingTopic]; got != 3 {
		t.Errorf("pruned %d once testmod.behind is inactive, want 3 (k2..k4)", got)
	}
	if left := e.keysLeft(thingTopic); !slices.Equal(left, []string{"k5", "k6"}) {
		t.Fatalf("left once testmod.behind is inactive: %v, want k5 and k6 (newer than the retention)", left)
	}
	for name, b := range map[string]*Bus{"staff's": staff, "the running handler's": ahead} {
		ts, cs := e.stats(b, thingTopic, "testmod.behind")
		if cs.Active || cs.LastSeen == nil || time.Since(*cs.LastSeen) < 14*24*time.Hour {
			t.Errorf("%s overview of the inactive group: %+v, want inactive, last seen 15 days ago", name, cs)
		}
		if cs.Lag != 2 {
			t.Errorf("%s overview: the inactive group's lag %d, want 2 (what is left for it: k5, k6)", name, cs.Lag)
		}
		if ts.Published != 6 || ts.Pruned != 4 {
			t.Errorf("%s overview of the topic: published %d, pruned %d; want 6 and 4", name, ts.Published, ts.Pruned)
		}
		if _, cs := e.stats(b, thingTopic, "testmod.ahead"); !cs.Active || cs.Lag != 0 || cs.LastProcessed == nil {
			t.Errorf("%s overview of the running group: %+v", name, cs)
		}
	}
	want := fmt.Sprintf(`
# HELP modshop_bus_messages_pruned Messages deleted from a topic after the retention, once every active consumer group had passed them.
# TYPE modshop_bus_messages_pruned counter
modshop_bus_messages_pruned{topic=%q} 4
modshop_bus_messages_pruned{topic=%q} 0
`, thingTopic, thingFollowed{}.EventName())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "modshop_bus_messages_pruned"); err != nil {
		t.Error(err)
	}

	// The group runs again: it goes on from the oldest message still
	// there, and is active again.
	back := e.bus(Config{PruneInterval: noPruning})
	Handle(back, "testmod.behind", e.consumer(), record("testmod.behind"))
	if err := back.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(back, thingTopic, "testmod.behind")
	var got []string
	if err := e.mod.Raw(`SELECT key FROM effects WHERE handler = 'testmod.behind' ORDER BY applied_at, key`).Scan(&got).Error; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"k1", "k2", "k5", "k6"}) {
		t.Errorf("the group that came back applied %v, want k1, k2 before and k5, k6 (k3, k4 were pruned)", got)
	}
	if _, cs := e.stats(staff, thingTopic, "testmod.behind"); !cs.Active {
		t.Errorf("the group that came back: %+v, want active", cs)
	}
}

// TestPrune_SubscriberConsumesAcrossPruning: while messages are published
// and consumed, a pruner with a retention of a nanosecond deletes whatever
// the group has passed, again and again; every message is applied once,
// none is delivered twice, and in the end only the group's last
// acknowledged message is left.
func TestPrune_SubscriberConsumesAcrossPruning(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		b := e.bus(Config{PruneInterval: noPruning, Retention: time.Nanosecond, PruneBatch: 7})
		Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			e.publish(b, ctx, fmt.Sprintf("a%03d", i))
		}
		e.caughtUp(b, thingTopic, "testmod.record")
		e.prune(b)
		if left := e.keysLeft(thingTopic); !slices.Equal(left, []string{"a019"}) {
			t.Fatalf("left after the first prune: %v, want the last acknowledged, a019", left)
		}

		stop := make(chan struct{})
		var pruning sync.WaitGroup
		var passes atomic.Int64
		pruning.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := b.pruneMessages(ctx); err != nil {
					t.Error(err)
					return
				}
				passes.Add(1)
			}
		})
		var publishers sync.WaitGroup
		for p := range 4 {
			publishers.Go(func() {
				for i := range 60 {
					e.publish(b, ctx, fmt.Sprintf("b%d-%03d", p, i))
				}
			})
		}
		publishers.Wait()
		e.waitFor("every message", func() bool { return e.countAll() >= 260 })
		e.caughtUp(b, thingTopic, "testmod.record")
		close(stop)
		pruning.Wait()

		var distinct, all int64
		if err := e.mod.Raw(`SELECT count(DISTINCT key), count(*) FROM effects`).Row().Scan(&distinct, &all); err != nil {
			t.Fatal(err)
		}
		if distinct != 260 || all != 260 {
			t.Fatalf("with %d prunes meanwhile: %d distinct effects, %d in all; want 260 each", passes.Load(), distinct, all)
		}
		if n := testutil.ToFloat64(b.metrics.duplicates.WithLabelValues("testmod.record")); n != 0 {
			t.Fatalf("%v messages were delivered again", n)
		}
		e.prune(b)
		if left := e.keysLeft(thingTopic); len(left) != 1 {
			t.Fatalf("left at the end: %v, want only the last acknowledged", left)
		}
		if ts, cs := e.stats(b, thingTopic, "testmod.record"); ts.Published != 260 || ts.Pruned != 259 || cs.Lag != 0 {
			t.Fatalf("overview at the end: %+v, %+v; want 260 published, 259 pruned, no lag", ts, cs)
		}
	})
}

// TestPrune_DoesNotBlockPublishers: while a pruning transaction has
// deleted its batch and not committed yet, a publisher on the same topic
// commits; its message is consumed once the prune commits.
func TestPrune_DoesNotBlockPublishers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	b := e.bus(Config{PruneInterval: noPruning})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"old1", "old2", "old3"} {
		e.publish(b, ctx, k)
	}
	e.caughtUp(b, thingTopic, "testmod.record")
	e.age(thingTopic)

	held, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // a failing test lets the prune go
	var once sync.Once
	b.pruneHeld = func() {
		once.Do(func() {
			close(held)
			<-release
		})
	}
	pruned := make(chan map[string]int64, 1)
	go func() {
		p, _, err := b.pruneMessages(ctx)
		if err != nil {
			t.Error(err)
		}
		pruned <- p
	}()
	e.within("the prune to hold its transaction open", held)
	published := make(chan struct{})
	go func() {
		e.publish(b, ctx, "during-prune")
		close(published)
	}()
	e.within("the publish during the prune's transaction", published)
	releaseOnce()
	if got := (<-pruned)[thingTopic]; got != 2 {
		t.Fatalf("pruned %d, want 2 (old1, old2; old3 is the group's last acknowledged)", got)
	}
	e.waitFor("the message published during the prune", func() bool { return e.effects("during-prune") == 1 })
	if left := e.keysLeft(thingTopic); !slices.Equal(left, []string{"old3", "during-prune"}) {
		t.Fatalf("left: %v", left)
	}
}

// TestPrune_OneProcessAtATime: while one process prunes, another's pass
// skips and deletes nothing.
func TestPrune_OneProcessAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	first := e.bus(Config{PruneInterval: noPruning})
	second := e.bus(Config{PruneInterval: noPruning})
	for _, k := range []string{"x1", "x2"} {
		e.publish(first, ctx, k)
	}
	e.age(thingTopic)
	held, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	first.pruneHeld = func() {
		close(held)
		<-release
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, _, err := first.pruneMessages(ctx); err != nil {
			t.Error(err)
		}
	}()
	e.within("the first prune to hold its transaction open", held)
	pruned, ran, err := second.pruneMessages(ctx)
	if err != nil || ran || len(pruned) != 0 {
		t.Errorf("a second process's prune while the first prunes: ran %v, pruned %v, err %v; want skipped", ran, pruned, err)
	}
	releaseOnce()
	<-done
	if left := e.keysLeft(thingTopic); len(left) != 0 {
		t.Fatalf("left: %v; with no consumer group, every old message goes", left)
	}
	if ts, _ := e.stats(second, thingTopic, ""); ts.Published != 2 || ts.Pruned != 2 || ts.LastPublished == nil {
		t.Fatalf("overview once every message is pruned: %+v, want 2 published, 2 pruned, and when the last was", ts)
	}
}

// TestPrune_ReplayingADeadLetterNeedsNoMessageRow: a dead letter keeps its
// payload and metadata; once the message's row is pruned it can still be
// replayed, and the pruner never deletes dead letters.
func TestPrune_ReplayingADeadLetterNeedsNoMessageRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var broken atomic.Bool
	broken.Store(true)
	b := e.bus(Config{PruneInterval: noPruning, MaxAttempts: 1})
	Handle(b, "testmod.picky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if ev.Key == "poison" && broken.Load() {
			return errors.New("not yet")
		}
		return record("testmod.picky")(ctx, tx, ev)
	})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(b, ctx, "poison")
	e.publish(b, ctx, "after")
	e.caughtUp(b, thingTopic, "testmod.picky")
	e.age(thingTopic)
	e.prune(b)
	if left := e.keysLeft(thingTopic); !slices.Equal(left, []string{"after"}) {
		t.Fatalf("left: %v, want the poison message's row pruned", left)
	}
	letters, err := b.DeadLetters(ctx, false, 10)
	if err != nil || len(letters) != 1 {
		t.Fatalf("open dead letters after the prune: %v, %v; want the poison one", letters, err)
	}
	broken.Store(false)
	if _, err := b.Replay(ctx, letters[0].ID); err != nil {
		t.Fatalf("replay after the prune: %v", err)
	}
	if n := e.effects("poison"); n != 1 {
		t.Fatalf("the replayed message was applied %d times", n)
	}
}

// TestHeartbeat_ARunningGroupStaysActive: a group whose subscriber runs
// marks itself seen again within a tenth of the group expiry, so it is
// active again even when its mark was made to look old.
func TestHeartbeat_ARunningGroupStaysActive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	b := e.bus(Config{PruneInterval: noPruning, GroupExpiry: time.Second})
	Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, cs := e.stats(b, thingTopic, "testmod.record"); !cs.Active || cs.LastSeen == nil {
		t.Fatalf("a group just started: %+v, want active", cs)
	}
	e.forget(thingTopic, "testmod.record")
	e.waitFor("the running group to be seen again", func() bool {
		_, cs := e.stats(b, thingTopic, "testmod.record")
		return cs.Active && cs.LastSeen != nil && time.Since(*cs.LastSeen) < time.Hour
	})
}

// TestPrune_RabbitMQOutboxRowsGoOnceForwarded: with the rabbitmq
// transport the outbox keeps a row until the forwarder has sent it, even
// when the forwarder has not run for longer than the group expiry; rows
// forwarded and older than the retention go; the per-topic counts stay.
func TestPrune_RabbitMQOutboxRowsGoOnceForwarded(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{PruneInterval: noPruning})
	Handle(consumer, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	first := p.bus(p.pubE, Config{PruneInterval: noPruning})
	if err := first.Start(ctx); err != nil { // runs the forwarder
		t.Fatal(err)
	}
	p.pubE.publish(first, ctx, "sent1")
	p.pubE.publish(first, ctx, "sent2")
	p.conE.waitFor("both forwarded and applied", func() bool {
		return p.conE.effects("sent1") == 1 && p.conE.effects("sent2") == 1
	})
	p.pubE.caughtUp(first, outboxTopic, forwarderGroup)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// No forwarder runs now: this one stays in the outbox.
	idle := p.bus(p.pubE, Config{PruneInterval: noPruning})
	p.pubE.publish(idle, ctx, "unsent")
	outboxRows := func() int {
		var n int
		if err := p.pubE.admin.QueryRow(`SELECT count(*) FROM ` + messagesTable(outboxTopic)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := p.pubE.admin.Exec(`UPDATE ` + messagesTable(outboxTopic) + ` SET created_at = created_at - interval '8 days'`); err != nil {
		t.Fatal(err)
	}
	p.pubE.forget(outboxTopic, forwarderGroup)
	if got := p.pubE.prune(idle)[outboxTopic]; got != 1 {
		t.Errorf("pruned %d outbox rows, want 1 (sent1; sent2 is the forwarder's last acknowledged)", got)
	}
	if n := outboxRows(); n != 2 {
		t.Fatalf("%d outbox rows left, want 2 (sent2 and the unsent one)", n)
	}
	if ts, _ := p.pubE.stats(idle, thingTopic, "testmod.record"); ts.Published != 3 || ts.Pruned != 1 {
		t.Errorf("the publisher's overview of the topic: published %d, pruned %d; want 3 and 1", ts.Published, ts.Pruned)
	}

	second := p.bus(p.pubE, Config{PruneInterval: noPruning})
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.conE.waitFor("the unsent message, forwarded late", func() bool { return p.conE.effects("unsent") == 1 })
}

// TestOverview_GroupsSeenBeforeHeartbeatsCountAsSeenNow: a consumer group
// whose offsets predate the heartbeats (a database from before) is
// treated as seen when the pruner first finds it, so it holds pruning
// back for one group expiry instead of being dropped at once.
func TestOverview_GroupsSeenBeforeHeartbeatsCountAsSeenNow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	b := e.bus(Config{PruneInterval: noPruning})
	e.publish(b, ctx, "m1")
	e.publish(b, ctx, "m2")
	if _, err := e.admin.Exec(`INSERT INTO ` + offsetsTable(thingTopic) + ` (consumer_group, offset_acked, last_processed_transaction_id) VALUES ('testmod.legacy', 0, '0')`); err != nil {
		t.Fatal(err)
	}
	e.age(thingTopic)
	if got := e.prune(b)[thingTopic]; got != 0 {
		t.Fatalf("pruned %d messages a group from before the heartbeats has not read", got)
	}
	if _, cs := e.stats(b, thingTopic, "testmod.legacy"); !cs.Active || cs.LastSeen == nil || cs.Lag != 2 {
		t.Fatalf("the group from before: %+v, want active (seen now) with lag 2", cs)
	}
}

// TestPrune_OutboxKeepsEverythingUntilTheForwarderHasRun: rows written to
// the outbox of a database where no forwarder has run yet (a CLI command
// before the first serve: no forwarder offsets row, no consumer group
// row) are kept however old they are, and forwarded once one runs.
func TestPrune_OutboxKeepsEverythingUntilTheForwarderHasRun(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{PruneInterval: noPruning})
	Handle(consumer, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	idle := p.bus(p.pubE, Config{PruneInterval: noPruning}) // never started: no forwarder
	p.pubE.publish(idle, ctx, "early")
	p.pubE.age(outboxTopic)
	if got := p.pubE.prune(idle)[outboxTopic]; got != 0 {
		t.Fatalf("pruned %d outbox rows that no forwarder has sent, want 0", got)
	}
	fwd := p.bus(p.pubE, Config{PruneInterval: noPruning})
	if err := fwd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.conE.waitFor("the early message, forwarded", func() bool { return p.conE.effects("early") == 1 })
}

// TestStart_TheFirstPruneDoesNotOvertakeTheForwarder: a process that
// starts the first forwarder on a database prunes at once; the old rows
// written before are forwarded all the same.
func TestStart_TheFirstPruneDoesNotOvertakeTheForwarder(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{PruneInterval: noPruning})
	Handle(consumer, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	idle := p.bus(p.pubE, Config{PruneInterval: noPruning})
	p.pubE.publish(idle, ctx, "early")
	p.pubE.age(outboxTopic)
	fwd := p.bus(p.pubE, Config{PruneInterval: time.Hour}) // the first pass runs at Start
	if err := fwd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.conE.waitFor("the early message, forwarded", func() bool { return p.conE.effects("early") == 1 })
}

// TestPrune_ASeenGroupWithoutAPositionHoldsEverythingBack: a group marked
// seen (as Start does before its subscriber has subscribed) but without an
// offsets row yet will read the topic from its first message: nothing may
// go, although every other group has passed it all.
func TestPrune_ASeenGroupWithoutAPositionHoldsEverythingBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	old := e.bus(Config{PruneInterval: noPruning})
	Handle(old, "testmod.old", e.consumer(), record("testmod.old"))
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"m1", "m2", "m3"} {
		e.publish(old, ctx, k)
	}
	e.caughtUp(old, thingTopic, "testmod.old")
	e.age(thingTopic)
	if _, err := e.admin.Exec(`INSERT INTO bus.consumer_groups (topic, consumer_group, last_seen) VALUES ($1, 'testmod.new', now())`, thingTopic); err != nil {
		t.Fatal(err)
	}
	if got := e.prune(old)[thingTopic]; got != 0 {
		t.Fatalf("pruned %d messages that an active group without a position has still to read, want 0", got)
	}
	// Once it has expired it holds nothing back.
	e.forget(thingTopic, "testmod.new")
	if got := e.prune(old)[thingTopic]; got != 2 {
		t.Fatalf("pruned %d once the group without a position expired, want 2 (m1, m2)", got)
	}
}

// TestStart_ANewGroupGetsTheOldMessagesWhilePruningRuns: a new handler in
// a process that prunes at Start (in small batches, the first pass racing
// the router's subscribe) applies every old message that the topic's other
// group has long passed.
func TestStart_ANewGroupGetsTheOldMessagesWhilePruningRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	old := e.bus(Config{PruneInterval: noPruning})
	Handle(old, "testmod.old", e.consumer(), record("testmod.old"))
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		e.publish(old, ctx, fmt.Sprintf("m%02d", i))
	}
	e.caughtUp(old, thingTopic, "testmod.old")
	e.age(thingTopic)
	nb := e.bus(Config{PruneInterval: time.Hour, PruneBatch: 5})
	Handle(nb, "testmod.new", e.consumer(), record("testmod.new"))
	if err := nb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(nb, thingTopic, "testmod.new")
	var n int64
	if err := e.mod.Raw(`SELECT count(DISTINCT key) FROM effects WHERE handler = 'testmod.new'`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 30 {
		t.Fatalf("the new handler applied %d of the 30 old messages", n)
	}
}

// TestPrune_AMessageCommittedBelowItsOffsetOrderSurvivesPruning: a
// publisher that took its transaction id early and writes its message
// late (a lower transaction id, a higher offset than a message committed
// meanwhile) while a pruner with a retention of a nanosecond runs again and
// again: every message is applied once.
func TestPrune_AMessageCommittedBelowItsOffsetOrderSurvivesPruning(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		b := e.bus(Config{PruneInterval: noPruning, Retention: time.Nanosecond, PruneBatch: 2})
		Handle(b, "testmod.record", e.consumer(), record("testmod.record"))
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var pruning sync.WaitGroup
		var passes atomic.Int64
		pruning.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := b.pruneMessages(ctx); err != nil {
					t.Error(err)
					return
				}
				passes.Add(1)
			}
		})
		for i := range 15 {
			e.publish(b, ctx, fmt.Sprintf("pre%02d", i))
			held, release := make(chan struct{}), make(chan struct{})
			errc := make(chan error, 1)
			go func() {
				errc <- e.mod.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
					// The insert takes the transaction id now.
					if err := tx.Exec(`INSERT INTO things (key) VALUES (?)`, fmt.Sprintf("early%02d", i)).Error; err != nil {
						return err
					}
					close(held)
					<-release
					return b.Publish(ctx, tx, thingHappened{Key: fmt.Sprintf("early%02d", i)})
				})
			}()
			<-held
			e.publish(b, ctx, fmt.Sprintf("late%02d", i)) // a higher transaction id, a lower offset, committed first
			from := passes.Load()
			e.waitFor("two prune passes while the early transaction is open", func() bool { return passes.Load() >= from+2 })
			close(release)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		e.waitFor("all 45", func() bool { return e.countAll() >= 45 })
		e.caughtUp(b, thingTopic, "testmod.record")
		close(stop)
		pruning.Wait()
		var distinct, all int64
		if err := e.mod.Raw(`SELECT count(DISTINCT key), count(*) FROM effects`).Row().Scan(&distinct, &all); err != nil {
			t.Fatal(err)
		}
		if distinct != 45 || all != 45 {
			t.Fatalf("%d distinct effects, %d in all; want 45 each", distinct, all)
		}
	})
}

// TestPrune_LeavesATopicAloneWhileAPositionIsAheadOfTheCluster: positions
// restored from another cluster (a dump of a database whose transaction
// ids had gone further than this cluster's) make every new message look
// read. The pruner leaves such a topic alone and says, at ERROR, once a
// pass, what to do; the overview marks the group. Once the positions are
// reset as docs/bus.md says, the group reads what it had not read, the new
// messages included, and pruning goes on.
func TestPrune_LeavesATopicAloneWhileAPositionIsAheadOfTheCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var logs logBuffer
	b := e.bus(Config{PruneInterval: noPruning, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	followedTopic := thingFollowed{}.EventName()

	// The old cluster's messages, o1 and o2, with its transaction ids; the
	// restored group had read o1.
	e.publish(b, ctx, "o1")
	e.publish(b, ctx, "o2")
	if _, err := e.admin.Exec(`UPDATE ` + messagesTable(thingTopic) + ` SET transaction_id = (transaction_id::text::bigint + 1000000000)::text::xid8`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(`INSERT INTO ` + offsetsTable(thingTopic) + ` (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT 'testmod.restored', "offset", transaction_id FROM ` + messagesTable(thingTopic) + ` WHERE payload->>'key' = 'o1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.Exec(`INSERT INTO ` + offsetsTable(followedTopic) + ` (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ('testmod.restored', 7, '1000000000')`); err != nil {
		t.Fatal(err)
	}
	// This cluster's.
	e.publish(b, ctx, "n1")
	e.publish(b, ctx, "n2")
	e.age(thingTopic)

	errorLines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "level=ERROR") {
				out = append(out, l)
			}
		}
		return out
	}
	if got := e.prune(b)[thingTopic]; got != 0 {
		t.Fatalf("pruned %d messages while a group's position is ahead of the cluster, want 0", got)
	}
	lines := errorLines()
	if len(lines) != 1 {
		t.Fatalf("logged %d errors in one pass, want 1: %q", len(lines), lines)
	}
	for _, want := range []string{thingTopic, followedTopic, "testmod.restored", "docs/bus.md"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the error %q does not name %q", lines[0], want)
		}
	}
	if _, cs := e.stats(b, thingTopic, "testmod.restored"); !cs.PositionAhead {
		t.Errorf("overview of the restored group: %+v, want its position shown ahead", cs)
	}
	e.prune(b)
	if n := len(errorLines()); n != 2 {
		t.Errorf("%d errors after two passes, want 2", n)
	}

	if _, err := e.admin.Exec(resetPositionsSQL(t)); err != nil {
		t.Fatalf("the reset of docs/bus.md: %v", err)
	}
	for _, topic := range []string{thingTopic, followedTopic} {
		if _, cs := e.stats(b, topic, "testmod.restored"); cs.PositionAhead {
			t.Errorf("overview of %s after the reset: %+v, want the position no longer ahead", topic, cs)
		}
	}
	if _, cs := e.stats(b, thingTopic, "testmod.restored"); cs.Lag != 3 {
		t.Errorf("lag after the reset: %d, want 3 (o2, n1, n2)", cs.Lag)
	}
	restored := e.bus(Config{PruneInterval: noPruning})
	Handle(restored, "testmod.restored", e.consumer(), record("testmod.restored"))
	if err := restored.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(restored, thingTopic, "testmod.restored")
	for key, want := range map[string]int{"o1": 0, "o2": 1, "n1": 1, "n2": 1} {
		if n := e.effects(key); n != want {
			t.Errorf("%s applied %d times after the reset, want %d", key, n, want)
		}
	}
	if got := e.prune(b)[thingTopic]; got != 3 {
		t.Errorf("pruned %d after the reset, want 3 (all but the group's last, n2)", got)
	}
	if n := len(errorLines()); n != 2 {
		t.Errorf("%d errors after the reset's pass, want still 2", n)
	}
}

// resetPositionsSQL is the statement docs/bus.md gives for resetting the
// positions after a restore into another cluster.
func resetPositionsSQL(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/bus.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Restoring a dump into another cluster\n")
	if !ok {
		t.Fatal("docs/bus.md has no section on restoring a dump into another cluster")
	}
	_, block, ok := strings.Cut(section, "\n```sql\n")
	if !ok {
		t.Fatal("docs/bus.md gives no SQL for resetting the positions")
	}
	block, _, _ = strings.Cut(block, "\n```")
	return block
}
