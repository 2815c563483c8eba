package bus

import (
	"errors"
	"fmt"
	"time"

	wmamqp "github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ThreeDotsLabs/watermill"
)

// The rabbitmq transport: for modules on databases of their own.
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

// Transports.
const (
	TransportPostgres = "postgres"
	TransportRabbitMQ = "rabbitmq"
)

// outboxTopic is where Publish writes enveloped events for the forwarder,
// which reads it as consumer group forwarderGroup.
const (
	outboxTopic    = "bus.outbox"
	forwarderGroup = "bus.forwarder"
)

func (b *Bus) rabbit() bool { return b.cfg.Transport == TransportRabbitMQ }

// amqpConfig is the durable publish-subscribe configuration, with every
// exchange and queue name prefixed by the namespace; queue names for a
// handler end in its name.
func (b *Bus) amqpConfig(handler string) wmamqp.Config {
	ns := b.cfg.AMQPNamespace
	cfg := wmamqp.NewDurablePubSubConfig(b.cfg.AMQPURL, func(topic string) string { return ns + topic + "_" + handler })
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
func (b *Bus) queueDepth(queue string) (int64, error) {
	b.amqpMu.Lock()
	defer b.amqpMu.Unlock()
	for attempt := 0; ; attempt++ {
		if b.amqpConn == nil || b.amqpConn.IsClosed() {
			// A broker that is away must not hold the overview for long.
			conn, err := amqp.DialConfig(b.cfg.AMQPURL, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
			if err != nil {
				return 0, fmt.Errorf("connect to RabbitMQ: %w", err)
			}
			b.amqpConn, b.amqpCh = conn, nil
		}
		if b.amqpCh == nil || b.amqpCh.IsClosed() {
			ch, err := b.amqpConn.Channel()
			if err != nil {
				return 0, err
			}
			b.amqpCh = ch
		}
		q, err := b.amqpCh.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err == nil {
			return int64(q.Messages), nil
		}
		// A queue not declared yet closes the channel; so may a broker
		// restart. Try once more on a new channel.
		b.amqpCh = nil
		if attempt > 0 {
			return 0, fmt.Errorf("inspect queue %s: %w", queue, err)
		}
	}
}

// closeInspector closes the connection queueDepth keeps.
func (b *Bus) closeInspector() error {
	b.amqpMu.Lock()
	defer b.amqpMu.Unlock()
	if b.amqpConn == nil {
		return nil
	}
	err := b.amqpConn.Close()
	b.amqpConn, b.amqpCh = nil, nil
	if errors.Is(err, amqp.ErrClosed) {
		return nil
	}
	return err
}

// startRabbit adds the forwarder and one RabbitMQ subscriber per handler
// to router. The caller closes the returned publisher after the router.
func (b *Bus) startRabbit(router *message.Router, handlers []*handler, logger watermill.LoggerAdapter) (message.Publisher, error) {
	if b.cfg.AMQPURL == "" {
		return nil, errors.New("bus: the rabbitmq transport needs an AMQP URL")
	}
	pub, err := wmamqp.NewPublisher(b.amqpConfig(""), logger)
	if err != nil {
		return nil, fmt.Errorf("bus: connect to RabbitMQ: %w", err)
	}
	fwd := &handler{name: forwarderGroup, topic: outboxTopic, retry: b.newGroupRetry(outboxTopic, forwarderGroup)}
	outbox, err := b.subscriber(fwd, logger)
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	if _, err := forwarder.NewForwarder(outbox, pub, logger, forwarder.Config{
		ForwarderTopic: outboxTopic,
		Router:         router,
		Middlewares:    []message.HandlerMiddleware{b.forwardRetry(fwd.retry, logger, pub.IsConnected)},
		// Only Publish writes to the outbox; anything else there would
		// block it forever.
		AckWhenCannotUnwrap: true,
	}); err != nil {
		_ = pub.Close()
		return nil, fmt.Errorf("bus forwarder: %w", err)
	}
	var subs []*wmamqp.Subscriber
	for _, h := range handlers {
		sub, err := wmamqp.NewSubscriber(b.amqpConfig(h.name), logger)
		if err != nil {
			for _, s := range subs {
				_ = s.Close()
			}
			_ = pub.Close()
			return nil, fmt.Errorf("bus: subscribe %s to RabbitMQ: %w", h.name, err)
		}
		subs = append(subs, sub)
		router.AddConsumerHandler(h.name, h.topic, sub, b.consume(h))
	}
	return pub, nil
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
func (b *Bus) forwardRetry(r *groupRetry, logger watermill.LoggerAdapter, connected func() bool) message.HandlerMiddleware {
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
			if err == nil || !brokerAway(err) || b.isClosing() {
				return out, err
			}
			b.metrics.retried.WithLabelValues(forwarderGroup, kindTransient).Inc()
			r.failed(err)
			if batch == nil {
				return nil, err
			}
			batch.endForRetry(msg.Context(), err)
			return nil, nil
		}
	}
}
