package bus

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// TestConformance runs Watermill's own Pub/Sub conformance suite against the
// bus as modshop ships it:
//
//   - Subscribers are built by (*Bus).subscriber, the very code the router's
//     handlers get theirs from: a pool acting as the bus role, one subscriber
//     per topic and consumer group, DefaultPostgreSQLSchema with
//     schema-qualified tables bus."m_<topic>" / bus."o_<topic>", batch size
//     100, ack deadline 30 s, and the LISTEN/NOTIFY backoff (wake-ups from a
//     running listener, 5 s safety poll, 1 s after a query error). Config is
//     the shipped default.
//   - The pool is sized as Start means to size the bus's pool: two plus one
//     connection per live subscriber. (The pool New opens is capped at 4 by
//     pgxpool, whatever Start asks for later; with it the suite deadlocks in
//     TestConcurrentSubscribe: 50 competing subscribers of one group, each
//     holding a connection while it waits for the group's offsets row lock,
//     and the next Subscribe waiting for a connection forever.)
//   - Publishers do what Bus.Publish does: one transaction per Publish call on
//     a module role's pool (which may only INSERT into the messages tables),
//     a watermill-sql publisher bound to that transaction, and pg_notify of
//     the topic in the same transaction, so the wake-up fires at commit. A raw
//     publisher on the pool would send no wake-ups and leave every hop to the
//     safety poll, which is not how modshop runs.
//   - Tables are created by ensureTables, as New and Start create them, not by
//     watermill's schema initialisation: the suite's SubscribeInitialize and
//     every first Publish or Subscribe of a topic call it.
//
// One adaptation, and only at the edge: modshop's payload column is json (the
// bus only ever carries json.Marshal-ed events), while the suite publishes
// opaque bytes such as "x", which PostgreSQL rejects as json. The test's
// publisher therefore seals each payload into a JSON string (base64) and the
// test's subscriber opens it again before the suite sees the message; the
// message itself (UUID, metadata, ack, nack, context) is the subscriber's own.
//
// Features, honestly:
//   - ConsumerGroups: every handler is its own consumer group.
//   - ExactlyOnceDelivery false: the subscriber is at-least-once (a batch's
//     offset commits after the batch, so closing mid-batch redelivers);
//     exactly-once effects come from the handler layer (processed_messages),
//     which this suite does not exercise.
//   - GuaranteedOrder: strict order per consumer group (transaction id, then
//     offset; competing subscribers of one group serialise on the offsets row).
//   - Persistent: messages live in PostgreSQL.
//   - NewSubscriberReceivesOldMessages false: a new subscriber of an existing
//     group continues from the group's offset (a new group starts at the
//     beginning, but the suite's test reuses the group).
//   - RestartServiceCommand nil: the suite would restart the shared test
//     server under every other test; TestReconnect is skipped for that.
//   - ContextPreserved false: a message's context is not stored.
//
// With -short the suite itself scales down (10 instead of 50 competing
// subscribers, 100 instead of 10,000 messages per test, and so on).
func TestConformance(t *testing.T) {
	h := newConformance(t)
	features := tests.Features{
		ConsumerGroups:                      true,
		ExactlyOnceDelivery:                 false,
		GuaranteedOrder:                     true,
		GuaranteedOrderWithSingleSubscriber: false,
		Persistent:                          true,
		RestartServiceCommand:               nil,
		RequireSingleInstance:               false,
		NewSubscriberReceivesOldMessages:    false,
		ContextPreserved:                    false,
	}
	start := time.Now()
	tests.TestPubSub(t, features, h.pubSub, h.pubSubWithGroup)
	t.Cleanup(func() { h.report(t, time.Since(start)) })
}

// conformance is the world the suite runs in: one database provisioned as in
// production, one Bus (its pool, its wake-up listener), and a module's pool
// that publishers act through.
type conformance struct {
	bus  *Bus
	pool *sql.DB // acts as the bus role; sized 2 + one per live subscriber
	mod  *sql.DB // acts as a module's role, as publishers do
	log  *countingHandler
	wml  watermill.LoggerAdapter

	mu        sync.Mutex
	topics    map[string]bool
	live      int // subscribers not yet closed
	peakLive  int
	peakConns int
}

// conformanceModule is the module whose role publishes in the suite.
const conformanceModule = "testmod"

func newConformance(t *testing.T) *conformance {
	t.Helper()
	ctx := context.Background()
	url := testkit.NewDatabase(t)
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	if err := db.Provision(ctx, admin, conformanceModule); err != nil {
		t.Fatal(err)
	}
	if err := Provision(ctx, admin, conformanceModule); err != nil {
		t.Fatal(err)
	}
	mod, err := db.OpenModule(ctx, url, conformanceModule, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mod.Close() })
	// The ceiling leaves room for the suite's largest test (50 subscribers)
	// next to another one; SetMaxOpenConns is the limit that counts.
	pool, err := db.OpenModule(ctx, url, Schema, 64)
	if err != nil {
		t.Fatal(err)
	}
	pool.SetMaxOpenConns(2)
	t.Cleanup(func() { pool.Close() })
	h := &conformance{pool: pool, mod: mod, topics: map[string]bool{}}
	h.sampleConnections(t)

	counting := newCountingHandler()
	b, err := New(ctx, Config{DatabaseURL: url, Log: slog.New(counting)}, NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	// The wake-up listener, started as Start starts it and stopped by Close.
	runCtx, cancel := context.WithCancel(context.Background())
	b.stop = cancel
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		b.wake.listen(runCtx, url, b.notify.origin, b.log, b.outage)
	}()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	waitForListener(t, admin)

	h.bus, h.log = b, counting
	h.wml = watermill.NewSlogLoggerWithLevelMapping(b.log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	return h
}

// sampleConnections records how many connections the bus pool held at most.
func (h *conformance) sampleConnections(t *testing.T) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				n := h.pool.Stats().OpenConnections
				h.mu.Lock()
				h.peakConns = max(h.peakConns, n)
				h.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
}

// waitForListener waits until the wake-up listener is LISTENing, so that no
// test depends on the safety poll for its first wake-up.
func waitForListener(t *testing.T, admin *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE $1`,
			"LISTEN "+notifyChannel+"%").Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the bus wake-up listener did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *conformance) pubSub(t *testing.T) (message.Publisher, message.Subscriber) {
	return h.pubSubWithGroup(t, "conformance")
}

func (h *conformance) pubSubWithGroup(t *testing.T, group string) (message.Publisher, message.Subscriber) {
	// Each pair is like one process's view of the bus: its subscribers share
	// the bus pool and wake-ups, and closing it wakes its own backoffs first
	// (as Bus.Close does) without waking anyone else's.
	proc := &Bus{cfg: h.bus.cfg, log: h.bus.log, db: h.pool, wake: h.bus.wake, closing: make(chan struct{})}
	return &confPublisher{h: h}, &confSubscriber{h: h, proc: proc, group: group, stop: make(chan struct{})}
}

// ensureTopic creates a topic's tables the way the bus does, once.
func (h *conformance) ensureTopic(topic string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.topics[topic] {
		return nil
	}
	// PostgreSQL truncates longer identifiers silently, so two long topics
	// could share a table. The Registry keeps event names to 48 bytes; the
	// suite's topics ("topic-<uuid>-<n>", up to 45 bytes) bypass it.
	for _, prefix := range []string{"m_", "o_"} {
		if n := len(prefix + topic); n > 63 {
			return fmt.Errorf("topic %q: table name %s%s is %d bytes, over PostgreSQL's 63", topic, prefix, topic, n)
		}
	}
	if err := ensureTables(context.Background(), h.pool, []string{topic}); err != nil {
		return err
	}
	h.topics[topic] = true
	return nil
}

// subscribers counts live subscribers and sizes the pool as Start does.
func (h *conformance) subscribers(delta int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.live += delta
	h.peakLive = max(h.peakLive, h.live)
	h.pool.SetMaxOpenConns(2 + h.live)
}

func (h *conformance) report(t *testing.T, took time.Duration) {
	h.mu.Lock()
	topics, live, conns := len(h.topics), h.peakLive, h.peakConns
	h.mu.Unlock()
	t.Logf("conformance suite: %s, %d topics, at most %d live subscribers and %d bus connections",
		took.Round(time.Millisecond), topics, live, conns)
	for _, line := range h.log.summary() {
		t.Log("bus log: " + line)
	}
}

// confPublisher publishes like Bus.Publish: in a module's transaction, with
// the wake-up sent at commit.
type confPublisher struct {
	h *conformance

	mu       sync.Mutex
	closed   bool
	inFlight sync.WaitGroup
}

func (p *confPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return wmsql.ErrPublisherClosed
	}
	p.inFlight.Add(1)
	p.mu.Unlock()
	defer p.inFlight.Done()

	if err := p.h.ensureTopic(topic); err != nil {
		return err
	}
	sealed := make([]*message.Message, len(msgs))
	for i, msg := range msgs {
		m, err := sealPayload(msg)
		if err != nil {
			return err
		}
		sealed[i] = m
	}
	ctx := context.Background()
	tx, err := p.h.mod.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(tx), wmsql.PublisherConfig{SchemaAdapter: p.h.bus.schemaAdapter()}, nil)
	if err != nil {
		return err
	}
	if err := pub.Publish(topic, sealed...); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "SELECT pg_notify($1, $2)", notifyChannel, topic); err != nil {
		return err
	}
	return tx.Commit()
}

func (p *confPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.inFlight.Wait()
	return nil
}

// confSubscriber gives each Subscribe call its own subscriber from
// (*Bus).subscriber, as the router gives each handler one, and opens the
// payload seal on the way out.
type confSubscriber struct {
	h     *conformance
	proc  *Bus
	group string

	mu      sync.Mutex
	closed  bool
	subs    []*wmsql.Subscriber
	stop    chan struct{}
	forward sync.WaitGroup
}

var _ message.SubscribeInitializer = (*confSubscriber)(nil)

func (s *confSubscriber) SubscribeInitialize(topic string) error { return s.h.ensureTopic(topic) }

func (s *confSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.h.ensureTopic(topic); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, wmsql.ErrSubscriberClosed
	}
	sub, err := s.proc.subscriber(&handler{name: s.group, topic: topic}, s.h.wml)
	if err != nil {
		return nil, err
	}
	s.subs = append(s.subs, sub)
	s.h.subscribers(1)
	in, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.forward.Add(1)
	go func() {
		defer s.forward.Done()
		defer close(out)
		for {
			select {
			case msg, ok := <-in:
				if !ok {
					return
				}
				if err := openPayload(msg); err != nil {
					s.h.log.note("conformance: " + err.Error())
					msg.Nack()
					continue
				}
				select {
				case out <- msg:
				case <-s.stop:
					return
				}
			case <-s.stop:
				return
			}
		}
	}()
	return out, nil
}

func (s *confSubscriber) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.proc.closing) // as Bus.Close: every backoff returns at once
	var errs []error
	for _, sub := range s.subs {
		errs = append(errs, sub.Close())
	}
	s.h.subscribers(-len(s.subs))
	close(s.stop)
	s.forward.Wait()
	return errors.Join(errs...)
}

// sealedKey marks a message whose payload is sealed in a JSON string. The
// mark goes when the seal is opened, so a nacked message's copy, which
// carries the opened payload, is not opened twice.
const sealedKey = "_conformance_sealed"

func sealPayload(msg *message.Message) (*message.Message, error) {
	payload, err := json.Marshal([]byte(msg.Payload)) // a base64 JSON string
	if err != nil {
		return nil, err
	}
	sealed := msg.Copy()
	sealed.Payload = payload
	sealed.Metadata.Set(sealedKey, "1")
	return sealed, nil
}

func openPayload(msg *message.Message) error {
	if msg.Metadata.Get(sealedKey) == "" {
		return nil
	}
	var raw []byte
	if err := json.Unmarshal(msg.Payload, &raw); err != nil {
		return fmt.Errorf("open payload of %s: %w", msg.UUID, err)
	}
	msg.Payload = raw
	delete(msg.Metadata, sealedKey)
	return nil
}

// countingHandler counts the bus's warnings and errors by message, so the
// suite's output stays readable and the summary shows what happened.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
}

func newCountingHandler() *countingHandler { return &countingHandler{counts: map[string]int{}} }

func (c *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (c *countingHandler) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" || a.Key == "error" {
			line += ": " + firstLine(a.Value.String())
		}
		return true
	})
	c.note(line)
	return nil
}

func (c *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *countingHandler) WithGroup(string) slog.Handler      { return c }

func (c *countingHandler) note(line string) {
	c.mu.Lock()
	c.counts[line]++
	c.mu.Unlock()
}

func (c *countingHandler) summary() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := make([]string, 0, len(c.counts))
	for line, n := range c.counts {
		lines = append(lines, fmt.Sprintf("%5d × %s", n, line))
	}
	sort.Strings(lines)
	return lines
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
