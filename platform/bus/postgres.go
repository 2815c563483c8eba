package bus

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
)

// postgresTransport is the postgres transport, the default: the bus
// tables are the queues.
//
// Every module shares the bus's database. Publish writes each event to its
// topic's table; each handler is a consumer group of that table, read by a
// watermill-sql subscriber of its own (subscriber) in batches, woken by
// LISTEN/NOTIFY (notify.go, wakeup.go); its turn is an advisory lock
// (offsetsLockedByAdvisoryLock), and a module on the bus's database applies
// its messages inside the batch (batch.go). The handlers of every process
// on the database show in the overview, and a replay is asked of whichever
// process runs the dead letter's handler.
type postgresTransport struct{ b *Bus }

func (postgresTransport) tables() []string { return nil }

func (postgresTransport) publish(inTx message.Publisher, topic string, msg *message.Message) (string, error) {
	return topic, inTx.Publish(topic, msg)
}

func (postgresTransport) groups(handlers []*handler) []groupKey {
	groups := make([]groupKey, 0, len(handlers))
	for _, h := range handlers {
		groups = append(groups, groupKey{h.topic, h.name})
	}
	sortGroups(groups)
	return groups
}

func (t postgresTransport) subscribe(router *message.Router, handlers []*handler, logger watermill.LoggerAdapter) error {
	for _, h := range handlers {
		sub, err := t.b.subscriber(h, logger)
		if err != nil {
			return err
		}
		router.AddConsumerHandler(h.name, h.topic, sub, t.b.consume(h))
	}
	return nil
}

// stats shows every consumer group of the topic, also those of handlers
// that run in other processes on this database.
func (t postgresTransport) stats(ctx context.Context, topic string, handlers []string) (TopicStats, error) {
	ts, err := t.b.tableStats(ctx, topic)
	if err != nil {
		return ts, err
	}
	groups, err := t.b.consumerGroups(ctx, topic)
	if err != nil {
		return ts, err
	}
	for _, g := range groups {
		if !slices.Contains(handlers, g) {
			handlers = append(handlers, g)
		}
	}
	for _, h := range handlers {
		cs, err := t.b.groupStats(ctx, topic, h)
		if err != nil {
			return ts, err
		}
		ts.Consumers = append(ts.Consumers, cs)
	}
	return ts, nil
}

func (t postgresTransport) replayElsewhere(ctx context.Context, d DeadLetter) (DeadLetter, error) {
	return t.b.askReplay(ctx, d)
}

func (postgresTransport) close() error { return nil }

// subscriber reads h's topic from the bus tables as h's consumer group:
// each handler's with the postgres transport, and the forwarder's of the
// outbox with the rabbitmq one.
func (b *Bus) subscriber(h *handler, logger watermill.LoggerAdapter) (*wmsql.Subscriber, error) {
	ack := 30 * time.Second
	if h.retry == nil {
		h.retry = b.newGroupRetry(h.topic, h.name)
	}
	sub, err := wmsql.NewSubscriber(batchBeginner{b.db}, wmsql.SubscriberConfig{
		ConsumerGroup:  h.name,
		AckDeadline:    &ack,
		ResendInterval: b.cfg.RetryBackoff,
		BackoffManager: &backoff{wake: b.wake.channel(h.topic), closed: b.closing, safety: b.cfg.SafetyPoll, retryAfter: time.Second, polled: b.pollFlag(h.topic, h.name), retry: h.retry, outage: b.outage, more: moreToRead(b.db, h.topic, h.name)},
		SchemaAdapter:  b.schemaAdapter(),
		OffsetsAdapter: offsetsAdapter(),
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("bus subscriber %s: %w", h.name, err)
	}
	return sub, nil
}

func (b *Bus) schemaAdapter() schemaAdapter {
	return schemaAdapter{wmsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName:          messagesTable,
		SubscribeBatchSize:                 b.cfg.BatchSize,
		InitializeSchemaWithoutTransaction: true,
	}}
}

// schemaAdapter is watermill-sql's PostgreSQL schema with batches read in
// READ COMMITTED instead of REPEATABLE READ. The batch reads its messages
// and offset in one statement (one snapshot either way) and is the only
// writer of its offset while it holds its group's advisory lock, so the
// stronger level buys nothing there; handlers that run in the batch get
// the level they would get in a transaction of their own: each statement
// sees what has committed, and a retry after a lost race can succeed
// instead of failing on the same old snapshot forever.
type schemaAdapter struct {
	wmsql.DefaultPostgreSQLSchema
}

func (schemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelReadCommitted }

func offsetsAdapter() offsetsLockedByAdvisoryLock {
	return offsetsLockedByAdvisoryLock{wmsql.DefaultPostgreSQLOffsetsAdapter{GenerateMessagesOffsetsTableName: offsetsTable}}
}

// offsetsLockedByAdvisoryLock is watermill-sql's PostgreSQL offsets adapter
// with one change: a consumer group's turn is claimed with a transaction
// advisory lock instead of SELECT ... FOR UPDATE on its offsets row.
//
// Why: a row lock gives the subscriber's batch transaction a transaction
// id for as long as its handlers run, and every subscriber on the cluster
// reads only rows older than the oldest running transaction id. So one slow
// handler held back every topic of every module. An advisory lock takes no
// transaction id; the batch gets one only for its final offset write. A
// group that finds the lock taken reads nothing this round, as before.
type offsetsLockedByAdvisoryLock struct {
	wmsql.DefaultPostgreSQLOffsetsAdapter
}

func (a offsetsLockedByAdvisoryLock) NextOffsetQuery(params wmsql.NextOffsetQueryParams) (wmsql.Query, error) {
	return wmsql.Query{
		Query: `SELECT offset_acked, last_processed_transaction_id
		          FROM ` + a.MessagesOffsetsTable(params.Topic) + `
		         WHERE consumer_group = $1
		           AND pg_try_advisory_xact_lock(hashtextextended($2, 0))`,
		Args: []any{params.ConsumerGroup, advisoryKey(params.Topic, params.ConsumerGroup)},
	}, nil
}

// advisoryKey names the advisory lock that gives a consumer group its turn.
func advisoryKey(topic, group string) string { return "modshop-bus:" + topic + ":" + group }
