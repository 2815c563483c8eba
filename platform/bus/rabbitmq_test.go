package bus

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp "github.com/rabbitmq/amqp091-go"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/testkit"
)

// amqpURL is the RabbitMQ the tests use: TEST_AMQP_URL, or the local one.
// Without a broker the tests fail, unless MODSHOP_SKIP_RABBITMQ=1 says to
// skip them.
func amqpURL(t *testing.T) string {
	t.Helper()
	url := os.Getenv("TEST_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@127.0.0.1:5672/"
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		if os.Getenv("MODSHOP_SKIP_RABBITMQ") == "1" {
			t.Skipf("SKIPPED: no RabbitMQ at %s (MODSHOP_SKIP_RABBITMQ=1)", url)
		}
		t.Fatalf("no RabbitMQ at %s (set TEST_AMQP_URL, start one, or MODSHOP_SKIP_RABBITMQ=1): %v", url, err)
	}
	conn.Close()
	return url
}

// rabbitPair is two modules on two databases with a broker between them.
type rabbitPair struct {
	t          *testing.T
	url, ns    string
	pubE, conE *env
}

func newRabbitPair(t *testing.T) *rabbitPair {
	url := amqpURL(t)
	p := &rabbitPair{t: t, url: url, ns: fmt.Sprintf("test-%d-", time.Now().UnixNano()), pubE: newEnv(t), conE: newEnv(t)}
	t.Cleanup(func() { testkit.DeleteAMQPNamespace(url, p.ns) })
	return p
}

func (p *rabbitPair) bus(e *env, cfg Config) *Bus {
	cfg.Transport, cfg.AMQPURL, cfg.AMQPNamespace = TransportRabbitMQ, p.url, p.ns
	return e.bus(cfg)
}

// TestRabbitMQ_CrossesDatabasesAndAppliesOnce: an event written in one
// database's outbox reaches a handler on another database through the
// broker and is applied once, also when the broker delivers it twice; a
// rolled-back publish sends nothing.
func TestRabbitMQ_CrossesDatabasesAndAppliesOnce(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{})
	Handle(consumer, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publisher := p.bus(p.pubE, Config{})
	if err := publisher.Start(ctx); err != nil { // runs the forwarder
		t.Fatal(err)
	}

	p.pubE.publish(publisher, ctx, "first")
	errRollback := errors.New("roll back")
	err := p.pubE.mod.Transaction(func(tx *gorm.DB) error {
		if err := publisher.Publish(ctx, tx, thingHappened{Key: "rolled-back"}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "second")
	p.conE.waitFor("both committed events on the other database", func() bool {
		return p.conE.effects("first") == 1 && p.conE.effects("second") == 1
	})
	if n := p.conE.effects("rolled-back"); n != 0 {
		t.Fatalf("a rolled-back publish was applied %d times", n)
	}
	if n := p.pubE.effects("first"); n != 0 {
		t.Fatalf("the effect landed in the publisher's database (%d)", n)
	}

	// The forwarder sends a message again when it crashes between the
	// broker's confirm and its own acknowledgement: same message id.
	var id string
	if err := p.conE.mod.Raw(`SELECT message_id FROM processed_messages WHERE handler = 'testmod.record' ORDER BY processed_at LIMIT 1`).Scan(&id).Error; err != nil || id == "" {
		t.Fatalf("the first message's inbox mark: %q, %v", id, err)
	}
	again, err := wmamqp.NewPublisher(publisher.transport.(*rabbitTransport).amqpConfig(""), watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	dup := message.NewMessage(id, []byte(`{"key":"first"}`))
	dup.Metadata.Set(KeyEvent, thingHappened{}.EventName())
	if err := again.Publish(thingHappened{}.EventName(), dup); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "third")
	p.conE.waitFor("the message after the duplicate", func() bool { return p.conE.effects("third") == 1 })
	if n := p.conE.effects("first"); n != 1 {
		t.Fatalf("a message delivered twice was applied %d times", n)
	}

	// The overview: the publisher's outbox counts its three events per
	// topic and is forwarded; the consumer's queue is empty.
	topic := thingHappened{}.EventName()
	p.pubE.waitFor("the publisher's overview", func() bool {
		stats, err := publisher.Overview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var published, forwarderLag int64 = -1, -1
		for _, ts := range stats {
			switch ts.Topic {
			case topic:
				published = ts.Published
			case outboxTopic:
				if len(ts.Consumers) == 1 {
					forwarderLag = ts.Consumers[0].Lag
				}
			}
		}
		return published == 3 && forwarderLag == 0
	})
	p.conE.waitFor("the consumer's overview", func() bool {
		stats, err := consumer.Overview(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range stats {
			if ts.Topic == topic {
				return len(ts.Consumers) == 1 && ts.Consumers[0].Handler == "testmod.record" && ts.Consumers[0].Lag == 0
			}
		}
		return false
	})
}

// TestRabbitMQ_NothingIsLostWhileAProcessIsDown: events published while the
// consuming process is down wait in its durable queue; events written while
// the publishing process's forwarder is down wait in its outbox.
func TestRabbitMQ_NothingIsLostWhileAProcessIsDown(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	first := p.bus(p.conE, Config{})
	Handle(first, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := first.Start(ctx); err != nil { // declares the queue
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// The publishing process writes while its forwarder is not running yet.
	publisher := p.bus(p.pubE, Config{})
	p.pubE.publish(publisher, ctx, "before-forwarder")
	if err := publisher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "while-consumer-down")

	second := p.bus(p.conE, Config{})
	Handle(second, "testmod.record", p.conE.consumer(), record("testmod.record"))
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.conE.waitFor("what was published while each side was down", func() bool {
		return p.conE.effects("before-forwarder") == 1 && p.conE.effects("while-consumer-down") == 1
	})
}

// TestRabbitMQ_PoisonMessageParkedInTheConsumersDatabase: after the
// attempts, the message is a dead letter in the consuming process's
// database, the next one flows, and a replay after the fix applies it once.
func TestRabbitMQ_PoisonMessageParkedInTheConsumersDatabase(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{MaxAttempts: 3})
	var broken atomic.Bool
	broken.Store(true)
	Handle(consumer, "testmod.poison", p.conE.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if ev.Key == "poison" && broken.Load() {
			return errors.New("cannot apply poison")
		}
		return record("testmod.poison")(ctx, tx, ev)
	})
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publisher := p.bus(p.pubE, Config{})
	if err := publisher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "poison")
	p.pubE.publish(publisher, ctx, "next")
	p.conE.waitFor("the message after the poison one", func() bool { return p.conE.effects("next") == 1 })
	var letters []DeadLetter
	p.conE.waitFor("the dead letter", func() bool {
		var err error
		letters, err = consumer.DeadLetters(ctx, false, 10)
		return err == nil && len(letters) == 1
	})
	if l := letters[0]; l.Handler != "testmod.poison" || l.Attempts != 3 {
		t.Fatalf("dead letter: %+v", l)
	}
	broken.Store(false)
	for range 2 {
		if _, err := consumer.Replay(ctx, letters[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := p.conE.effects("poison"); n != 1 {
		t.Fatalf("replayed twice, applied %d times", n)
	}
}

// amqpConnections counts this process's open RabbitMQ connections (the
// goroutine watermill-amqp keeps per connection).
func amqpConnections() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "watermill-amqp/v3/pkg/amqp.(*ConnectionWrapper).handleConnectionClose")
}

// TestStart_AStartThatFailsLeavesNoSubscriberBehind: a Start that fails
// while recording its consumer groups (here a trigger refuses them) and
// the Close after it leave no RabbitMQ subscriber (nor its connection)
// open, and the Close does not wait for a router that never ran. Not
// parallel: it counts the process's connections.
func TestStart_AStartThatFailsLeavesNoSubscriberBehind(t *testing.T) {
	p := newRabbitPair(t)
	ctx := context.Background()
	before := amqpConnections()
	b := p.bus(p.conE, Config{PruneInterval: noPruning})
	if _, err := p.conE.admin.Exec(`
		CREATE FUNCTION bus.refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON bus.consumer_groups FOR EACH ROW EXECUTE FUNCTION bus.refuse()`); err != nil {
		t.Fatal(err)
	}
	Handle(b, "testmod.one", p.conE.consumer(), record("testmod.one"))
	Handle(b, "testmod.two", p.conE.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingFollowed) error { return nil })
	if err := b.Start(ctx); err == nil || !strings.Contains(err.Error(), "refused by the test") {
		t.Fatalf("Start: %v, want the trigger's refusal", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close after the failed Start: %v", err)
	}
	p.conE.waitFor("the connections of the failed Start to close", func() bool { return amqpConnections() <= before })
}

// TestRabbitMQ_TransientFailuresAreRetriedUntilTheySucceed: with the
// rabbitmq transport too, a handler failing transiently more often than
// MaxAttempts is retried (no transaction open while it waits) until it
// succeeds: applied once, no dead letter, the message behind it after it.
func TestRabbitMQ_TransientFailuresAreRetriedUntilTheySucceed(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	consumer := p.bus(p.conE, Config{MaxAttempts: 2, TransientBackoff: 5 * time.Millisecond, TransientBackoffMax: 20 * time.Millisecond})
	var failures atomic.Int32
	Handle(consumer, "testmod.blinking", p.conE.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if ev.Key == "blinking" && failures.Add(1) <= 6 {
			return tx.Exec(`DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = '40001'; END $$`).Error
		}
		if ev.Key == "after" && p.conE.effects("blinking") != 1 {
			return errors.New("applied before the message in front of it")
		}
		return record("testmod.blinking")(ctx, tx, ev)
	})
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publisher := p.bus(p.pubE, Config{})
	if err := publisher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "blinking")
	p.pubE.publish(publisher, ctx, "after")
	p.conE.waitFor("the message behind", func() bool { return p.conE.effects("after") == 1 })
	if n := p.conE.effects("blinking"); n != 1 {
		t.Errorf("applied %d times, want once", n)
	}
	if dl, _ := consumer.DeadLetters(ctx, true, 10); len(dl) != 0 {
		t.Errorf("dead letters: %+v, want none", dl)
	}
	if n := consumer.retried("testmod.blinking", kindTransient); n != 6 {
		t.Errorf("transient retries: %v, want 6", n)
	}
}

// TestRabbitMQ_ForwarderWaitsOutABrokerThatIsAway: the publishing
// process's connection to the broker is cut (then refused) while events
// wait in its outbox; the forwarder pauses and tries again for as long as
// it takes, and once the broker is reachable again every event arrives,
// in order, once.
func TestRabbitMQ_ForwarderWaitsOutABrokerThatIsAway(t *testing.T) {
	t.Parallel()
	p := newRabbitPair(t)
	ctx := context.Background()
	var order []string
	var mu sync.Mutex
	consumer := p.bus(p.conE, Config{})
	Handle(consumer, "testmod.record", p.conE.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		mu.Lock()
		order = append(order, ev.Key)
		mu.Unlock()
		return record("testmod.record")(ctx, tx, ev)
	})
	if err := consumer.Start(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := neturl.Parse(p.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testkit.NewTCPProxy(t, u.Host)
	u.Host = proxy.Addr()
	publisher := p.pubE.bus(Config{Transport: TransportRabbitMQ, AMQPURL: u.String(), AMQPNamespace: p.ns,
		TransientBackoff: 20 * time.Millisecond, TransientBackoffMax: 200 * time.Millisecond})
	if err := publisher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.pubE.publish(publisher, ctx, "before")
	p.conE.waitFor("the first event", func() bool { return p.conE.effects("before") == 1 })

	proxy.Cut()
	for _, k := range []string{"during-1", "during-2", "during-3"} {
		p.pubE.publish(publisher, ctx, k)
	}
	p.pubE.waitFor("the forwarder to pause on the broker", func() bool { return publisher.retried(forwarderGroup, kindTransient) >= 2 })
	proxy.Restore()

	p.conE.waitFor("the events published while the broker was away", func() bool { return p.conE.effects("during-3") == 1 })
	for _, k := range []string{"before", "during-1", "during-2", "during-3"} {
		if n := p.conE.effects(k); n != 1 {
			t.Errorf("%s applied %d times, want once", k, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ","); got != "before,during-1,during-2,during-3" {
		t.Errorf("handled in the order %s", got)
	}
}
