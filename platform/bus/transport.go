package bus

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Transports.
const (
	TransportPostgres = "postgres"
	TransportRabbitMQ = "rabbitmq"
)

// A transport carries messages from Publish to the handlers. Both write
// what Publish is given into the bus tables, in the caller's transaction;
// they differ in who reads them there. postgresTransport (postgres.go):
// every handler, as a consumer group of its topic's table. rabbitTransport
// (rabbitmq.go): a forwarder alone, which relays an outbox to RabbitMQ,
// where the handlers read their queues. Everything else (the inboxes, the
// retries, dead letters and replays, pruning, the wake-ups) is the bus's,
// the same for both.
type transport interface {
	// tables are the topics with bus tables besides the registered
	// events' (the outbox).
	tables() []string
	// publish writes msg of topic with tx, the publisher of the caller's
	// transaction, and returns the topic whose table it was written to:
	// the one whose subscribers to wake after the commit.
	publish(tx message.Publisher, topic string, msg *message.Message) (table string, err error)
	// groups are the consumer groups of the bus tables that subscribe's
	// subscribers read, sorted (sortGroups); Start records them first.
	groups(handlers []*handler) []groupKey
	// subscribe adds to router what brings each handler its messages.
	subscribe(router *message.Router, handlers []*handler, logger watermill.LoggerAdapter) error
	// stats reports topic's published messages and its consumer groups'
	// progress (handlers: those of this process on topic); Overview adds
	// the dead letters and the order.
	stats(ctx context.Context, topic string, handlers []string) (TopicStats, error)
	// replayElsewhere replays d, whose handler does not run in this
	// process, in the process that runs it, or answers ErrHandlerNotHere.
	replayElsewhere(ctx context.Context, d DeadLetter) (DeadLetter, error)
	// close releases what subscribe and stats opened, after the router
	// has closed.
	close() error
}

// newTransport returns b's transport as its configuration names it.
func newTransport(b *Bus) (transport, error) {
	switch b.cfg.Transport {
	case TransportPostgres:
		return postgresTransport{b}, nil
	case TransportRabbitMQ:
		return &rabbitTransport{b: b}, nil
	}
	return nil, fmt.Errorf("bus: unknown transport %q (postgres or rabbitmq)", b.cfg.Transport)
}
