package bus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Retention: the message tables do not grow forever.
//
// A message is deleted once it is older than Config.Retention and every
// active consumer group of its topic has acknowledged it. A subscriber of
// watermill-sql's PostgreSQL schema reads only the rows after its group's
// position (transaction id, offset) and before every transaction still
// running (pg_snapshot_xmin), in that order; everything at or before its
// position it has read and will never read again. So deleting rows below
// the lowest position of the active groups takes nothing from anybody: no
// row a subscriber is still to read is ever deleted, and none it has read
// comes back. The row at that lowest position itself stays, so that the
// overview can still tell when the group's last message was published.
//
// A consumer group is active while a subscriber of it runs somewhere: each
// process marks the groups whose subscribers polled (backoff.polled) as
// seen in bus.consumer_groups, at start and then every heartbeatEvery. A
// group not seen for Config.GroupExpiry (a handler renamed or removed, a
// process no longer run) no longer holds pruning back; the overview shows
// it inactive. When it comes back it goes on from the oldest message still
// there. A group found in an offsets table that was never seen (a database
// from before the heartbeats) counts as seen when the pruner first finds
// it. Start records its groups (seen, with the zero position their
// subscribers would write when they subscribe) before it makes any
// subscriber, and an active group without a position counts as being at
// the start: a new group holds back everything from the moment its
// process starts. The outbox of the rabbitmq transport is the exception:
// its only group is the forwarder, and a row goes only once forwarded,
// however long the forwarder has been away, or before one ever ran.
//
// Positions, like messages, are transaction ids of the cluster they were
// written on. Restored from a dump into another cluster they may lie beyond
// every id this cluster has given: new messages would sort below them, so
// the groups read nothing new and the positions say nothing about what was
// read. A topic with such a position is not pruned; each pass says so at
// ERROR, and docs/bus.md tells how to reset the positions.
//
// Pruning runs in one process at a time (a session advisory lock), every
// PruneInterval, topic by topic, in statements of PruneBatch rows, each in
// a short transaction of its own: a transaction holding an id holds back
// what every subscriber on the cluster may read, so none may last long.
// Deleting takes row locks only on the rows it deletes, which nobody else
// writes: publishers append beside it and subscribers read past it
// unblocked. Each batch adds what it deleted to bus.pruned in the same
// statement, so that published counts (overview, metrics) stay totals.
//
// Dead letters live in their own table with their payload and metadata;
// pruning never touches them, and replaying one needs no message row.

// pruneLockKey names the advisory lock that lets one process prune.
const pruneLockKey = "modshop-bus:prune"

// groupKey is one consumer group of one topic.
type groupKey struct{ topic, group string }

// heartbeatEvery is how often a running group marks itself seen: a tenth
// of the expiry, at most a minute.
func (b *Bus) heartbeatEvery() time.Duration {
	return max(min(time.Minute, b.cfg.GroupExpiry/10), 10*time.Millisecond)
}

// pollFlag returns the flag that the subscriber of group on topic raises
// whenever it polls; the heartbeat reports the groups whose flag is up.
func (b *Bus) pollFlag(topic, group string) *atomic.Bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.polled == nil {
		b.polled = map[groupKey]*atomic.Bool{}
	}
	k := groupKey{topic, group}
	if b.polled[k] == nil {
		b.polled[k] = new(atomic.Bool)
	}
	return b.polled[k]
}

// groupsPolled returns the groups whose subscribers polled since the last
// call (all of this process's groups, when all), and lowers their flags.
func (b *Bus) groupsPolled(all bool) []groupKey {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []groupKey
	for k, f := range b.polled {
		if f.Swap(false) || all {
			out = append(out, k)
		}
	}
	sortGroups(out)
	return out
}

// sortGroups puts groups in one order for every process, so that two
// replicas marking the same groups cannot deadlock.
func sortGroups(groups []groupKey) {
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].topic != groups[j].topic {
			return groups[i].topic < groups[j].topic
		}
		return groups[i].group < groups[j].group
	})
}

// markSeen records that groups ran now.
func (b *Bus) markSeen(ctx context.Context, groups []groupKey) error {
	if len(groups) == 0 {
		return nil
	}
	topics := make([]string, len(groups))
	names := make([]string, len(groups))
	for i, g := range groups {
		topics[i], names[i] = g.topic, g.group
	}
	_, err := b.db.ExecContext(ctx, `
		INSERT INTO consumer_groups (topic, consumer_group, last_seen)
		SELECT t, g, now() FROM unnest($1::text[], $2::text[]) AS seen(t, g)
		ON CONFLICT (topic, consumer_group) DO UPDATE SET last_seen = excluded.last_seen`, topics, names)
	if err != nil {
		return fmt.Errorf("bus: mark consumer groups seen: %w", err)
	}
	return nil
}

// startGroups records, before any subscriber of this process is made, that
// groups run from now on: each gets the zero position its subscriber would
// write when it subscribes (it reads the topic from its first message) and
// is marked seen, so that it holds pruning back from here on, also against
// this process's first prune pass, which may run before the router has
// subscribed.
func (b *Bus) startGroups(ctx context.Context, groups []groupKey) error {
	for _, g := range groups {
		// #nosec G202 -- offsetsTable quotes the name (pgx.Identifier)
		if _, err := b.db.ExecContext(ctx, `INSERT INTO `+offsetsTable(g.topic)+` (consumer_group, offset_acked, last_processed_transaction_id)
			VALUES ($1, 0, '0') ON CONFLICT DO NOTHING`, g.group); err != nil {
			return fmt.Errorf("bus: record consumer group %s of %s: %w", g.group, g.topic, err)
		}
	}
	return b.markSeen(ctx, groups)
}

// heartbeat marks this process's running groups seen every heartbeatEvery
// until ctx ends.
func (b *Bus) heartbeat(ctx context.Context) {
	tick := time.NewTicker(b.heartbeatEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := b.markSeen(ctx, b.groupsPolled(false))
		switch {
		case err == nil:
			b.outage.Recovered()
		case ctx.Err() != nil, b.outage.Failed(err):
		default:
			b.log.Warn("bus: heartbeat failed", "err", err)
		}
	}
}

// pruneLoop prunes the message tables every PruneInterval until ctx ends.
func (b *Bus) pruneLoop(ctx context.Context) {
	tick := time.NewTicker(b.cfg.PruneInterval)
	defer tick.Stop()
	for {
		pruned, _, err := b.pruneMessages(ctx)
		switch {
		case err == nil:
			b.outage.Recovered()
		case ctx.Err() != nil, b.outage.Failed(err):
		default:
			b.log.Warn("bus: pruning the message tables failed", "err", err)
		}
		for topic, n := range pruned {
			if n > 0 {
				b.log.Info("bus: pruned messages", "topic", topic, "messages", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// pruneMessages is one pruning pass over every topic. It returns how many
// messages it deleted per topic, and ran false (deleting nothing) when
// another process is pruning.
func (b *Bus) pruneMessages(ctx context.Context) (pruned map[string]int64, ran bool, err error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("bus prune: %w", err)
	}
	defer conn.Close()
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, pruneLockKey).Scan(&ran); err != nil {
		return nil, false, fmt.Errorf("bus prune: %w", err)
	}
	if !ran {
		return nil, false, nil
	}
	defer func() {
		_, uerr := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, pruneLockKey)
		if uerr != nil {
			// Never pool a session that may still hold the lock: no process
			// would prune again.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	pruned = map[string]int64{}
	var ahead []string
	defer func() {
		if len(ahead) > 0 {
			b.log.Error("bus: not pruning topics whose consumer groups have positions beyond every transaction id of this cluster: "+
				"the positions were restored from another cluster, and these groups read no new message until they are reset "+
				"(stop every process and reset them as docs/bus.md says, under Restoring a dump into another cluster)",
				"groups", strings.Join(ahead, "; "))
		}
	}()
	for _, topic := range b.topics() {
		n, groups, err := b.pruneTopic(ctx, conn, topic)
		pruned[topic] += n
		if groups != "" {
			ahead = append(ahead, topic+": "+groups)
		}
		if err != nil {
			return pruned, true, fmt.Errorf("bus prune %s: %w", topic, err)
		}
	}
	return pruned, true, nil
}

// pruneTopic deletes topic's messages that are older than the retention
// and below every active group's position, in batches. It deletes nothing
// while a group's position is beyond every transaction id of the cluster
// (ahead names those groups): see pruneBatchQuery.
func (b *Bus) pruneTopic(ctx context.Context, conn *sql.Conn, topic string) (pruned int64, ahead string, err error) {
	// #nosec G202 -- offsetsTable quotes the name (pgx.Identifier)
	if _, err := conn.ExecContext(ctx, `
		INSERT INTO consumer_groups (topic, consumer_group, last_seen)
		SELECT $1, consumer_group, now() FROM `+offsetsTable(topic)+`
		ON CONFLICT DO NOTHING`, topic); err != nil {
		return 0, "", fmt.Errorf("note the consumer groups: %w", err)
	}
	query := pruneBatchQuery(topic)
	// The outbox's forwarder holds back whatever it has not sent, however
	// long it has been away, and also before it ever ran.
	var always any // NULL: none
	if topic == outboxTopic {
		always = forwarderGroup
	}
	args := []any{
		topic,
		always,
		b.cfg.GroupExpiry.Seconds(),
		b.cfg.Retention.Seconds(),
		b.cfg.PruneBatch,
	}
	for {
		var candidates, deleted, young int64
		candidates, deleted, young, ahead, err = b.pruneBatch(ctx, conn, query, args)
		pruned += deleted
		if err != nil || ahead != "" {
			return pruned, ahead, err
		}
		// Done when the batch reached the group's position or messages
		// newer than the retention (those behind them are, with rare
		// exceptions, newer still: the next pass takes them).
		if candidates < int64(b.cfg.PruneBatch) || young > 0 {
			return pruned, "", nil
		}
		if err := ctx.Err(); err != nil {
			return pruned, "", err
		}
	}
}

// pruneBatch runs one batch in a transaction of its own.
func (b *Bus) pruneBatch(ctx context.Context, conn *sql.Conn, query string, args []any) (candidates, deleted, young int64, ahead string, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, 0, "", err
	}
	var groupsAhead sql.NullString
	if err := tx.QueryRowContext(ctx, query, args...).Scan(&candidates, &deleted, &young, &groupsAhead); err != nil {
		return 0, 0, 0, "", errors.Join(err, tx.Rollback())
	}
	if deleted > 0 && b.pruneHeld != nil {
		b.pruneHeld()
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, 0, "", err
	}
	return candidates, deleted, young, groupsAhead.String, nil
}

// pruneBatchQuery deletes up to $5 of topic's messages below the lowest
// position of its active consumer groups (every message there is, when it
// has none) that are older than $4 seconds, and adds them to bus.pruned
// per destination topic (the outbox's rows carry theirs in the envelope),
// with the publish time of the newest.
//
// The active groups are those seen within $3 seconds, and the group $2
// (when not null) always, seen or not. An active group without an offsets
// row yet (marked seen at Start, before its subscriber subscribed) is at
// position zero: it will read the topic from its first message, so it
// holds everything back.
//
// A group whose position is at or beyond pg_snapshot_xmax (no transaction
// of this cluster has reached it: the positions were restored from another
// cluster) would make every new message look read, and the row order of
// the topic means nothing until the positions are reset: then nothing is
// deleted, and the last column names those groups.
//
// The candidates are the first $5 rows below the position in the order
// subscribers read them (the primary key); of those, the ones older than
// the retention go. created_at is the publishing transaction's start, in
// the publishing session's time zone: the retention is measured in this
// session's, the same unless sessions set different ones.
func pruneBatchQuery(topic string) string {
	destination := `$1::text`
	if topic == outboxTopic {
		destination = `coalesce(payload->>'destination_topic', '')`
	}
	return `
	WITH ahead AS (
		SELECT string_agg(consumer_group, ', ' ORDER BY consumer_group) AS groups
		  FROM ` + offsetsTable(topic) + `
		 WHERE last_processed_transaction_id >= pg_snapshot_xmax(pg_current_snapshot())
	), bound AS (
		SELECT coalesce(o.last_processed_transaction_id, '0'::xid8) AS txid, coalesce(o.offset_acked, 0) AS acked
		  FROM (SELECT consumer_group FROM consumer_groups
		         WHERE topic = $1 AND last_seen > now() - make_interval(secs => $3)
		        UNION
		        SELECT $2::text WHERE $2::text IS NOT NULL) g
		  LEFT JOIN ` + offsetsTable(topic) + ` o ON o.consumer_group = g.consumer_group
		 ORDER BY 1, 2
		 LIMIT 1
	), candidates AS (
		SELECT transaction_id, "offset", created_at < LOCALTIMESTAMP - make_interval(secs => $4) AS old
		  FROM ` + messagesTable(topic) + `
		 WHERE (SELECT groups FROM ahead) IS NULL
		   AND (transaction_id, "offset") < (
		         coalesce((SELECT txid FROM bound), pg_snapshot_xmax(pg_current_snapshot())),
		         coalesce((SELECT acked FROM bound), 0))
		 ORDER BY transaction_id, "offset"
		 LIMIT $5
	), gone AS (
		DELETE FROM ` + messagesTable(topic) + ` m
		 USING candidates c
		 WHERE c.old AND m.transaction_id = c.transaction_id AND m."offset" = c."offset"
		RETURNING ` + destination + ` AS destination, m.created_at
	), counted AS (
		INSERT INTO pruned (topic, destination, messages, newest, last_pruned)
		SELECT $1, destination, count(*), max(created_at), now() FROM gone GROUP BY destination
		ON CONFLICT (topic, destination) DO UPDATE
		   SET messages = pruned.messages + excluded.messages,
		       newest = greatest(pruned.newest, excluded.newest),
		       last_pruned = excluded.last_pruned
	)
	SELECT (SELECT count(*) FROM candidates),
	       (SELECT count(*) FROM gone),
	       (SELECT count(*) FROM candidates WHERE NOT old),
	       (SELECT groups FROM ahead)`
}
