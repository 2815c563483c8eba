package bus

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

var errNoRows = sql.ErrNoRows

// TopicStats describes one topic and each consumer group reading it.
type TopicStats struct {
	Topic         string          `json:"topic"`
	Published     int64           `json:"published"`
	LastPublished *time.Time      `json:"last_published"`
	Pruned        int64           `json:"pruned"` // of Published, deleted after the retention
	Consumers     []ConsumerStats `json:"consumers"`
}

// ConsumerStats is one handler's progress on a topic.
type ConsumerStats struct {
	Handler string `json:"handler"`
	// Process is the process that runs the handler and reported the row
	// (Config.Process); empty for a group of another process that this one
	// sees on the shared database.
	Process string `json:"process,omitempty"`
	// LastProcessed: publish time of the last acknowledged message; on the
	// rabbitmq transport, when the handler last applied one.
	LastProcessed *time.Time `json:"last_processed"`
	Lag           int64      `json:"lag"`          // messages published but not yet acknowledged
	DeadLetters   int64      `json:"dead_letters"` // open dead letters
	Active        bool       `json:"active"`       // seen running within the group expiry: holds pruning back
	LastSeen      *time.Time `json:"last_seen"`    // when a subscriber of the group last ran
	// PositionAhead: the group's position is beyond every transaction id
	// of this cluster (restored from another cluster): it reads nothing
	// new, and its topic is not pruned, until the positions are reset.
	PositionAhead bool `json:"position_ahead"`
	// RetryingSince: the group has been retrying a transient failure since
	// then (the database or the broker away, a lost race): it pauses and
	// reads again from its offset, and the messages behind wait. Nil when
	// it is not. LastError and Retries tell what failed and how often.
	RetryingSince *time.Time `json:"retrying_since"`
	LastError     *string    `json:"last_error"`
	Retries       int64      `json:"retries"`
}

// Overview reports, per topic and consumer group: last published, last
// processed, lag, open dead letters, whether the group is active (holds
// pruning back) and when it last ran, and whether its position was
// restored from another cluster (PositionAhead). Every process on the
// database sees the same, consumer groups of other processes included.
func (b *Bus) Overview(ctx context.Context) ([]TopicStats, error) {
	return b.overview(ctx, false, true)
}

// LocalOverview is this process's own part of the bus, what no other
// process reports: the consumer groups of its own handlers (and its
// outbox's forwarder), each labelled with Config.Process, on the topics
// they read and the topics its modules publish. Merging the local
// overviews of every process (the gateway does) shows each group once.
// Published counts come as the transport sees them from here: the shared
// tables' on the postgres transport, this process's outbox on rabbitmq
// (the publisher's process reports the whole count).
func (b *Bus) LocalOverview(ctx context.Context) ([]TopicStats, error) {
	return b.overview(ctx, true, true)
}

// Process is the name this process reports itself by (Config.Process).
func (b *Bus) Process() string { return b.cfg.Process }

// overview builds Overview (local false) or LocalOverview. lastFromInbox:
// fill in when a handler of this process last applied a message where the
// transport does not know it (the rabbitmq transport's queues keep no
// position), from the handler's inbox; metrics do without.
func (b *Bus) overview(ctx context.Context, local, lastFromInbox bool) ([]TopicStats, error) {
	b.mu.Lock()
	byTopic := map[string][]string{}
	own := map[string]*handler{}
	for _, h := range b.handlers {
		byTopic[h.topic] = append(byTopic[h.topic], h.name)
		own[h.name] = h
	}
	b.mu.Unlock()
	dead, err := b.openDeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	tables := b.transport.tables()
	out := []TopicStats{}
	for _, topic := range b.topics() {
		if local && len(byTopic[topic]) == 0 && !b.publishes(topic) && !slices.Contains(tables, topic) {
			continue // neither read nor written here
		}
		ts, err := b.transport.stats(ctx, topic, byTopic[topic])
		if err != nil {
			return nil, err
		}
		if local {
			ts.Consumers = slices.DeleteFunc(ts.Consumers, func(cs ConsumerStats) bool {
				return own[cs.Handler] == nil && !slices.Contains(tables, topic)
			})
		}
		slices.SortFunc(ts.Consumers, func(x, y ConsumerStats) int { return strings.Compare(x.Handler, y.Handler) })
		for i, cs := range ts.Consumers {
			ts.Consumers[i].DeadLetters = dead[cs.Handler]
			h := own[cs.Handler]
			if h == nil && !slices.Contains(tables, topic) {
				continue // another process's group (the shared database)
			}
			ts.Consumers[i].Process = b.cfg.Process
			if lastFromInbox && h != nil && cs.LastProcessed == nil {
				if ts.Consumers[i].LastProcessed, err = lastApplied(ctx, h); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, ts)
	}
	return out, nil
}

// publishes tells whether this process's modules publish topic
// (Config.Publishes; nil: every event).
func (b *Bus) publishes(topic string) bool {
	return b.cfg.Publishes == nil || slices.Contains(b.cfg.Publishes, topic)
}

// lastApplied is when handler h last applied a message, from its inbox:
// nil when it has applied none (or the marks were pruned).
func lastApplied(ctx context.Context, h *handler) (*time.Time, error) {
	if h.consumer.DB == nil {
		return nil, nil
	}
	var at sql.NullTime
	err := h.consumer.DB.WithContext(ctx).Raw(`SELECT max(processed_at) FROM processed_messages WHERE handler = ?`, h.name).Row().Scan(&at)
	if err != nil {
		return nil, fmt.Errorf("bus overview of %s: last applied: %w", h.name, err)
	}
	if !at.Valid {
		return nil, nil
	}
	return &at.Time, nil
}

// tableStats counts the messages published to topic's table: those in it
// and those pruned from it.
func (b *Bus) tableStats(ctx context.Context, topic string) (TopicStats, error) {
	ts := TopicStats{Topic: topic, Consumers: []ConsumerStats{}}
	err := b.db.QueryRowContext(ctx, `SELECT count(*),
		       coalesce(max(created_at), (SELECT max(newest) FROM pruned WHERE topic = $1)),
		       coalesce((SELECT sum(messages) FROM pruned WHERE topic = $1), 0)
		  FROM `+messagesTable(topic), topic).Scan(&ts.Published, &ts.LastPublished, &ts.Pruned)
	if err != nil {
		return ts, fmt.Errorf("bus overview of %s: %w", topic, err)
	}
	ts.Published += ts.Pruned
	return ts, nil
}

// groupStats is the progress of consumer group on topic's table. Active:
// holds pruning back (retention.go); a group never seen counts as seen
// when the pruner first finds it, and the outbox's forwarder always.
func (b *Bus) groupStats(ctx context.Context, topic, group string) (ConsumerStats, error) {
	cs := ConsumerStats{Handler: group}
	err := b.db.QueryRowContext(ctx, `
		SELECT (SELECT m.created_at FROM `+messagesTable(topic)+` m
		         WHERE m.transaction_id = o.last_processed_transaction_id AND m."offset" = o.offset_acked),
		       (SELECT count(*) FROM `+messagesTable(topic)+` m
		         WHERE (m.transaction_id, m."offset") > (o.last_processed_transaction_id, o.offset_acked)),
		       g.last_seen,
		       $3 OR g.last_seen IS NULL OR g.last_seen > now() - make_interval(secs => $4),
		       o.last_processed_transaction_id >= pg_snapshot_xmax(pg_current_snapshot()),
		       g.retrying_since, g.last_error, coalesce(g.retries, 0)
		  FROM (SELECT coalesce((SELECT last_processed_transaction_id FROM `+offsetsTable(topic)+` WHERE consumer_group = $1), '0'::xid8) AS last_processed_transaction_id,
		               coalesce((SELECT offset_acked FROM `+offsetsTable(topic)+` WHERE consumer_group = $1), 0) AS offset_acked) o
		  LEFT JOIN consumer_groups g ON g.topic = $2 AND g.consumer_group = $1`,
		group, topic, topic == outboxTopic, b.cfg.GroupExpiry.Seconds()).Scan(&cs.LastProcessed, &cs.Lag, &cs.LastSeen, &cs.Active, &cs.PositionAhead,
		&cs.RetryingSince, &cs.LastError, &cs.Retries)
	if err != nil {
		return cs, fmt.Errorf("bus overview of %s/%s: %w", topic, group, err)
	}
	return cs, nil
}

func (b *Bus) openDeadLetters(ctx context.Context) (map[string]int64, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT handler, count(*) FROM dead_letters WHERE resolved_at IS NULL GROUP BY handler`)
	if err != nil {
		return nil, fmt.Errorf("count dead letters: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var h string
		var n int64
		if err := rows.Scan(&h, &n); err != nil {
			return nil, err
		}
		out[h] = n
	}
	return out, rows.Err()
}

// retryState is the retry state of handler name in this process (the
// rabbitmq transport's handlers, which have no row in consumer_groups).
func (b *Bus) retryState(name string) (since *time.Time, lastErr *string, retries int64) {
	b.mu.Lock()
	h := b.handlers[name]
	b.mu.Unlock()
	if h == nil || h.retry == nil {
		return nil, nil, 0
	}
	r := h.retry
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.since.IsZero() {
		return nil, nil, 0
	}
	s, e := r.since, r.lastErr
	return &s, &e, r.retries
}

// inflight is how many messages handler h is applying now.
func (b *Bus) inflight(name string) int64 {
	b.mu.Lock()
	h := b.handlers[name]
	b.mu.Unlock()
	if h == nil {
		return 0
	}
	return h.busy.Load()
}

// consumerGroups lists the consumer groups that have read topic, from its
// offsets table: the handlers of every process on this database.
func (b *Bus) consumerGroups(ctx context.Context, topic string) ([]string, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT consumer_group FROM `+offsetsTable(topic)) // #nosec G202 -- offsetsTable quotes the name (pgx.Identifier)
	if err != nil {
		return nil, fmt.Errorf("bus overview of %s: consumer groups: %w", topic, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}
