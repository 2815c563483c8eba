package bus

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrBrokerDown is what Ready answers when the rabbitmq transport's broker
// does not answer.
var ErrBrokerDown = errors.New("the message broker (RabbitMQ) does not answer")

// Ready checks what the bus needs besides the database: under the
// rabbitmq transport, that the broker takes a connection (events are
// forwarded to it and handlers read their queues there). A broker that is
// away makes the process not ready (/readyz): its outbox grows and its
// handlers get nothing. Nil under the postgres transport.
func (b *Bus) Ready(ctx context.Context) error {
	if b.cfg.Transport != TransportRabbitMQ {
		return nil
	}
	wait := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	conn, err := amqp.DialConfig(b.cfg.AMQPURL, amqp.Config{Dial: amqp.DefaultDial(wait)})
	if err != nil {
		return fmt.Errorf("%w at %s: %w", ErrBrokerDown, redactURL(b.cfg.AMQPURL), err)
	}
	_ = conn.Close() // only the connection mattered
	return nil
}

// redactURL is u without its password, for messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(the configured URL)"
	}
	return p.Redacted()
}
