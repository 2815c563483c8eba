package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitTransport is the rabbitmq transport: for modules on databases of
// their own.
//
// A module still writes its events in its own database, in its business
// transaction: Publish wraps each event in watermill's forwarder envelope
// (destination topic, message id, payload, metadata) and writes it to one
// outbox topic in the bus tables of the process's database. The forwarder
// (watermill's component) reads the outbox like any subscriber, publishes
// each message to RabbitMQ with publisher confirms (persistent, to a durable
// fanout exchange per topic) and only then acknowledges it in the outbox:
// a crash in between sends it again, with the same message id. Each
// handler consumes from its own durable queue bound to its topic's exchange
// (<namespace><topic>_<handler>) and applies every message in a transaction
// of its own on its module's database, with the inbox mark: a message sent
// twice is applied once. Dead letters, replays and the admin API work as on
// PostgreSQL, in the process's database.
//
// A handler's queue receives what is published after it was first
// declared (when its process first subscribed); it is durable, so messages
// wait in it while the process is down.
type rabbitTransport struct {
	b *Bus
	// out is the forwarder's publisher to RabbitMQ, once subscribe made it.
	out message.Publisher
	// conn and ch inspect queues for the overview (queueDepth).
	mu   sync.Mutex
	conn *amqp.Connection
	ch   *amqp.Channel
}

// outboxTopic is where Publish writes enveloped events for the forwarder,
// which reads it as consumer group forwarderGroup.
const (
	outboxTopic    = "bus.outbox"
	forwarderGroup = "bus.forwarder"
)

func (*rabbitTransport) tables() []string { return []string{outboxTopic} }

// publish writes msg into the outbox, in watermill's forwarder envelope.
func (*rabbitTransport) publish(inTx message.Publisher, topic string, msg *message.Message) (string, error) {
	outbox := forwarder.NewPublisher(inTx, forwarder.PublisherConfig{ForwarderTopic: outboxTopic})
	return outboxTopic, outbox.Publish(topic, msg)
}

// groups: the outbox's forwarder alone reads the bus tables; the handlers
// read their queues.
func (*rabbitTransport) groups([]*handler) []groupKey {
	return []groupKey{{outboxTopic, forwarderGroup}}
}

// stats: the outbox shows its forwarder's lag; an event's topic shows what
// this process published to it and, for each handler here, what waits in
// its queue. Handlers of other processes have queues of their own, and
// read no bus table here.
func (t *rabbitTransport) stats(ctx context.Context, topic string, handlers []string) (TopicStats, error) {
	if topic == outboxTopic {
		ts, err := t.b.tableStats(ctx, topic)
		if err != nil {
			return ts, err
		}
		cs, err := t.b.groupStats(ctx, topic, forwarderGroup)
		if err != nil {
			return ts, err
		}
		ts.Consumers = append(ts.Consumers, cs)
		return ts, nil
	}
	ts, err := t.outboxStats(ctx, topic)
	if err != nil {
		return ts, err
	}
	for _, h := range handlers {
		// Waiting in the handler's queue, plus in its hands.
		ready, err := t.queueDepth(t.b.cfg.AMQPNamespace + topic + "_" + h)
		if err != nil {
			return ts, fmt.Errorf("bus overview of %s/%s: %w", topic, h, err)
		}
		cs := ConsumerStats{Handler: h, Lag: ready + t.b.inflight(h), Active: true}
		// Its handler runs here: its retry state is this process's.
		cs.RetryingSince, cs.LastError, cs.Retries = t.b.retryState(h)
		ts.Consumers = append(ts.Consumers, cs)
	}
	return ts, nil
}

// outboxStats counts the outbox rows this process wrote for topic, and
// those pruned from it.
func (t *rabbitTransport) outboxStats(ctx context.Context, topic string) (TopicStats, error) {
	ts := TopicStats{Topic: topic, Consumers: []ConsumerStats{}}
	err := t.b.db.QueryRowContext(ctx, `SELECT count(*),
		       coalesce(max(created_at), (SELECT newest FROM pruned WHERE topic = $2 AND destination = $1)),
		       coalesce((SELECT messages FROM pruned WHERE topic = $2 AND destination = $1), 0)
		  FROM `+messagesTable(outboxTopic)+` WHERE payload->>'destination_topic' = $1`,
		topic, outboxTopic).Scan(&ts.Published, &ts.LastPublished, &ts.Pruned)
	if err != nil {
		return ts, fmt.Errorf("bus overview of %s: %w", topic, err)
	}
	ts.Published += ts.Pruned
	return ts, nil
}

// replayElsewhere: the handlers of other processes park their dead letters
// in their own databases.
func (*rabbitTransport) replayElsewhere(_ context.Context, d DeadLetter) (DeadLetter, error) {
	return d, ErrHandlerNotHere
}

// close closes the forwarder's publisher and the connection queueDepth
// keeps.
func (t *rabbitTransport) close() error {
	var errs []error
	if t.out != nil {
		errs = append(errs, t.out.Close())
	}
	errs = append(errs, t.closeInspector())
	return errors.Join(errs...)
}

// amqpConfig is the durable publish-subscribe configuration, with every
// exchange and queue name prefixed by the namespace; queue names for a
// handler end in its name.
func (t *rabbitTransport) amqpConfig(handler string) wmamqp.Config {
	ns := t.b.cfg.AMQPNamespace
	cfg := wmamqp.NewDurablePubSubConfig(t.b.cfg.AMQPURL, func(topic string) string { return ns + topic + "_" + handler })
	cfg.Exchange.GenerateName = func(topic string) string { return ns + topic }
	cfg.Publish.ConfirmDelivery = true
	cfg.Publish.ChannelPoolSize = 4
	// One unacknowledged message per handler: what the broker counts as
	// ready plus the one in the handler's hands is the handler's whole lag
	// (Overview), which tests wait on before checking invariants.
	cfg.Consume.Qos.PrefetchCount = 1
	return cfg
}

// queueDepth is how many messages wait in queue, ready for its consumer.
func (t *rabbitTransport) queueDepth(queue string) (int64, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if t.conn == nil || t.conn.IsClosed() {
			// A broker that is away must not hold the overview for long.
			conn, err := amqp.DialConfig(t.b.cfg.AMQPURL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
			if err != nil {
				return 0, fmt.Errorf("connect to RabbitMQ: %w", err)
			}
			t.conn, t.ch = conn, nil
		}
		if t.ch == nil || t.ch.IsClosed() {
			ch, err := t.conn.Channel()
			if err != nil {
				return 0, err
			}
			t.ch = ch
		}
		q, err := t.ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err == nil {
			return int64(q.Messages), nil
		}
		// A queue not declared yet closes the channel; so may a broker
		// restart. Try once more on a new channel.
		t.ch = nil
		if attempt > 0 {
			return 0, fmt.Errorf("inspect queue %s: %w", queue, err)
		}
	}
}

// closeInspector closes the connection queueDepth keeps.
func (t *rabbitTransport) closeInspector() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn, t.ch = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// subscribe adds the forwarder and one RabbitMQ subscriber per handler to
// router. close closes the forwarder's publisher, after the router.
func (t *rabbitTransport) subscribe(router *message.Router, handlers []*handler, logger watermill.LoggerAdapter) error {
	b := t.b
	if b.cfg.AMQPURL == "" {
		return errors.New("bus: the rabbitmq transport needs an AMQP URL")
	}
	pub, err := wmamqp.NewPublisher(t.amqpConfig(""), logger)
	if err != nil {
		return fmt.Errorf("bus: connect to RabbitMQ: %w", err)
	}
	fwd := &handler{name: forwarderGroup, topic: outboxTopic, retry: b.newGroupRetry(outboxTopic, forwarderGroup)}
	outbox, err := b.subscriber(fwd, logger)
	if err != nil {
		_ = pub.Close()
		return err
	}
	if _, err := forwarder.NewForwarder(outbox, pub, logger, forwarder.Config{
		ForwarderTopic: outboxTopic,
		Router:         router,
		Middlewares:    []message.HandlerMiddleware{t.forwardRetry(fwd.retry, logger, pub.IsConnected)},
		// Only Publish writes to the outbox; anything else there would
		// block it forever.
		AckWhenCannotUnwrap: true,
	}); err != nil {
		_ = pub.Close()
		return fmt.Errorf("bus forwarder: %w", err)
	}
	var subs []*wmamqp.Subscriber
	for _, h := range handlers {
		sub, err := wmamqp.NewSubscriber(t.amqpConfig(h.name), logger)
		if err != nil {
			for _, s := range subs {
				_ = s.Close()
			}
			_ = pub.Close()
			return fmt.Errorf("bus: subscribe %s to RabbitMQ: %w", h.name, err)
		}
		subs = append(subs, sub)
		router.AddConsumerHandler(h.name, h.topic, sub, b.consume(h))
	}
	t.out = pub
	return nil
}

// forwardRetry is the forwarder's retry rule, the handlers' own: a broker
// that is away (the publisher not connected: watermill-amqp says so in a
// plain error, "not connected to AMQP"; or IsTransient: the connection
// lost midway) ends the outbox batch like a handler's transient failure, and
// the forwarder pauses outside any transaction and reads again from its
// offset, for as long as it takes (a message sent twice is applied once:
// the inboxes). Any other failure is retried with backoff a few times,
// then the message is given back to the outbox (it comes again in the
// same batch); it is never dropped.
func (t *rabbitTransport) forwardRetry(r *groupRetry, logger watermill.LoggerAdapter, connected func() bool) message.HandlerMiddleware {
	brokerAway := func(err error) bool { return IsTransient(err) || !connected() }
	permanent := middleware.Retry{MaxRetries: 5, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2, Logger: logger,
		ShouldRetry: func(p middleware.RetryParams) bool { return !brokerAway(p.Err) }}
	return func(h message.HandlerFunc) message.HandlerFunc {
		retried := permanent.Middleware(h)
		return func(msg *message.Message) ([]*message.Message, error) {
			batch := batchOf(msg.Context())
			if batch != nil && batch.retrying() != nil {
				return nil, nil // comes again: see consume
			}
			out, err := retried(msg)
			if err == nil || !brokerAway(err) || t.b.isClosing() {
				return out, err
			}
			t.b.metrics.retried.WithLabelValues(forwarderGroup, kindTransient).Inc()
			r.failed(msg.Context(), err)
			if batch == nil {
				return nil, err
			}
			batch.endForRetry(msg.Context(), err)
			return nil, nil
		}
	}
}
