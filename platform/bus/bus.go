package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/telemetry"
)

// Config tunes the bus. Zero values take the defaults.
type Config struct {
	// DatabaseURL is the server the bus tables live on; the bus connects to
	// it acting as its own role.
	DatabaseURL string
	// Transport carries messages between modules: TransportPostgres (the
	// default: the bus tables are the queues) or TransportRabbitMQ (the bus
	// tables are this process's outbox, forwarded to RabbitMQ; see
	// rabbitmq.go).
	Transport string
	// AMQPURL is the RabbitMQ server of the rabbitmq transport.
	AMQPURL string
	// AMQPNamespace prefixes every exchange and queue name (tests, or two
	// shops on one broker).
	AMQPNamespace string
	// MaxAttempts is how often a handler failing permanently is tried
	// before its message becomes a dead letter (default 5). Transient
	// failures (IsTransient) do not count.
	MaxAttempts int
	// RetryBackoff is the wait before the first retry of a permanent
	// failure; it doubles each time (default 50ms, capped at 5s).
	RetryBackoff time.Duration
	// TransientBackoff is a group's first pause after a transient failure,
	// outside any transaction, before it reads again from its offset; it
	// doubles (with jitter) up to TransientBackoffMax and starts again
	// after the group's next success (defaults 100ms and 3s).
	TransientBackoff    time.Duration
	TransientBackoffMax time.Duration
	// SafetyPoll is how long an idle subscriber waits without a wake-up before
	// it looks anyway (default 5s).
	SafetyPoll time.Duration
	// BatchSize is how many messages a subscriber reads per query and, when
	// handlers run in the batch, applies per commit (default 50: each message
	// takes a savepoint, and PostgreSQL keeps up to 64 of them per
	// transaction in shared memory before every snapshot on the cluster gets
	// slower).
	BatchSize int
	// SeparateTransactions makes every message run in its own transaction on
	// its consumer's pool, even when the consumer shares the bus's database
	// (slower; see batch.go).
	SeparateTransactions bool
	// CloseTimeout bounds how long Close waits for handlers in flight (default 30s).
	CloseTimeout time.Duration
	Log          *slog.Logger
	// Metrics, when set, receives the bus's collectors.
	Metrics prometheus.Registerer
	// MaxConns bounds the bus's own pool (default 4 + one per handler).
	MaxConns int
	// InboxRetention is how long a handler remembers a message it applied
	// (default 14 days): far longer than any redelivery can come late.
	InboxRetention time.Duration
	// Retention is how long a message stays in its topic's table at least
	// (default 7 days); after that it is pruned once every active consumer
	// group of the topic has passed it (retention.go).
	Retention time.Duration
	// GroupExpiry is how long a consumer group may go unseen (no subscriber
	// of it running anywhere) before it no longer holds pruning back
	// (default 14 days).
	GroupExpiry time.Duration
	// PruneInterval is how often the bus prunes its message tables (default
	// 10 minutes; negative: never, for tests and benchmarks).
	PruneInterval time.Duration
	// PruneBatch is how many messages one pruning statement deletes, in a
	// transaction of its own (default 1,000).
	PruneBatch int
	// Process names this process (telemetry.ServiceName: "modshop",
	// "modshop-product", ...): the local overview and dead letters carry
	// it, so that a view merged from several processes (the gateway's)
	// says who reported each row.
	Process string
	// Publishes lists the events this process's modules publish: its
	// metrics count only those topics (another process owns the others'
	// counts). Nil: every registered event (one binary).
	Publishes []string
	// NoStatementSpans leaves the bus's pool without statement spans
	// (db.TraceStatements): the switch MODSHOP_TRACE_STATEMENTS is the
	// process's, and the handlers applied in the bus's batch transactions
	// run their statements on this pool.
	NoStatementSpans bool
}

func (c *Config) setDefaults() {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 50 * time.Millisecond
	}
	if c.TransientBackoff <= 0 {
		c.TransientBackoff = 100 * time.Millisecond
	}
	if c.TransientBackoffMax <= 0 {
		c.TransientBackoffMax = 3 * time.Second
	}
	c.TransientBackoffMax = max(c.TransientBackoffMax, c.TransientBackoff)
	if c.SafetyPoll <= 0 {
		c.SafetyPoll = 5 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 50
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 30 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.InboxRetention <= 0 {
		c.InboxRetention = 14 * 24 * time.Hour
	}
	if c.Transport == "" {
		c.Transport = TransportPostgres
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.GroupExpiry <= 0 {
		c.GroupExpiry = 14 * 24 * time.Hour
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = 10 * time.Minute
	}
	if c.PruneBatch <= 0 {
		c.PruneBatch = 1000
	}
}

// Consumer is a module that handles messages: its name and its database
// handle (acting as its role), where the handler's effect and the record of
// applied messages are written together.
type Consumer struct {
	Module string
	DB     *gorm.DB
	// SeparateTransactions gives each of the module's messages a
	// transaction of its own instead of a savepoint in the subscriber's
	// batch (batch.go). Set it for handlers that lock rows that other
	// handlers lock too (hot stock rows, say): in a batch, each message's
	// locks are held until the batch commits, so locks pile up in no
	// particular order and two batches can deadlock each other again and
	// again, where one message per transaction takes its locks in order.
	SeparateTransactions bool
}

// Bus publishes and routes events.
type Bus struct {
	cfg      Config
	registry *Registry
	log      *slog.Logger
	db       *sql.DB // acts as the bus role
	// tracer makes the publish and handle spans (tracing.go).
	tracer  trace.Tracer
	wake    *wakeups
	notify  *notifier
	metrics *metrics
	// notifierStop ends the notifier after its last NOTIFY.
	notifierStop context.CancelFunc
	notifierDone chan struct{}

	mu       sync.Mutex
	handlers map[string]*handler
	started  bool

	// transport carries messages from Publish to the handlers
	// (transport.go).
	transport transport
	router    *message.Router
	closing   chan struct{}
	stop      context.CancelFunc
	// killCtx ends handlers that outlive CloseTimeout: their transactions
	// roll back and their messages are delivered again later.
	killCtx context.Context
	kill    context.CancelFunc
	done    sync.WaitGroup

	// polled holds, per consumer group of this process, whether its
	// subscriber polled since the last heartbeat (retention.go).
	polled map[groupKey]*atomic.Bool
	// outage logs the database going away and coming back, once each, for
	// the whole bus: its subscribers and its background work.
	outage *db.Outage
	// pruneHeld, when set (tests), runs inside each pruning transaction
	// that deleted messages, before its commit.
	pruneHeld func()
}

type handler struct {
	name     string
	topic    string
	consumer Consumer
	inBatch  *inBatch     // nil: each message in its own transaction
	busy     atomic.Int64 // messages in the handler's hands now
	retry    *groupRetry  // its group's transient failures
	run      func(ctx context.Context, tx *gorm.DB, ev Event) error
	// spanName is "handle <name>", its attempts' span (tracing.go); tries
	// numbers them across batches.
	spanName string
	tries    tries
}

// New connects the bus and creates the tables of every registered event.
// The bus schema and role must be provisioned (Provision) first.
func New(ctx context.Context, cfg Config, registry *Registry) (*Bus, error) {
	cfg.setDefaults()
	b := &Bus{
		cfg:      cfg,
		registry: registry,
		log:      cfg.Log.With("component", "bus"),
		tracer:   telemetry.Tracer("bus"),
		wake:     newWakeups(),
		notify:   newNotifier(),
		handlers: map[string]*handler{},
		closing:  make(chan struct{}),
	}
	var err error
	if b.transport, err = newTransport(b); err != nil {
		return nil, err
	}
	// The pool's hard limit is generous; Start narrows it with
	// SetMaxOpenConns once it knows how many subscribers there are.
	busDB, err := db.OpenModule(ctx, cfg.DatabaseURL, Schema, max(cfg.MaxConns, 64), db.TraceStatements(!cfg.NoStatementSpans))
	if err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	b.db = busDB
	b.outage = &db.Outage{Log: b.log, What: "bus"}
	b.killCtx, b.kill = context.WithCancel(context.Background())
	b.wake.replay = func(id int64) {
		// Counted before it starts, while the listener (counted too)
		// runs: Close waits for it, and it ends soon after Close begins
		// (it runs on killCtx).
		b.done.Add(1)
		go func() {
			defer b.done.Done()
			b.replayAsked(id)
		}()
	}
	// Tables for every event known now, so publishing works before Start;
	// Start adds those that handlers registered since.
	if err := ensureTables(ctx, busDB, b.topics()); err != nil {
		_ = busDB.Close()
		return nil, err
	}
	b.metrics = newMetrics(b)
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(b.metrics); err != nil {
			_ = busDB.Close()
			return nil, fmt.Errorf("bus metrics: %w", err)
		}
	}
	notifyCtx, stop := context.WithCancel(context.Background())
	b.notifierStop, b.notifierDone = stop, make(chan struct{})
	go func() {
		defer close(b.notifierDone)
		b.runNotifier(notifyCtx)
	}()
	return b, nil
}

// topics are the topics that have tables in the bus schema: every
// registered event's, and the transport's own (the rabbitmq transport's
// outbox).
func (b *Bus) topics() []string {
	return append(b.registry.Names(), b.transport.tables()...)
}

// Registry returns the event registry the bus decodes with.
func (b *Bus) Registry() *Registry { return b.registry }

// Handle subscribes fn to events of type T under the handler name (also its
// consumer group). Register every handler before Start.
func Handle[T Event](b *Bus, name string, c Consumer, fn func(ctx context.Context, tx *gorm.DB, ev T) error) {
	var zero T
	topic := zero.EventName()
	b.registry.Register(zero)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started {
		panic("bus: Handle after Start")
	}
	if _, dup := b.handlers[name]; dup {
		panic("bus: handler " + name + " registered twice")
	}
	b.handlers[name] = &handler{name: name, topic: topic, consumer: c, retry: b.newGroupRetry(topic, name), spanName: "handle " + name, run: func(ctx context.Context, tx *gorm.DB, ev Event) error {
		typed, ok := ev.(T)
		if !ok {
			return fmt.Errorf("handler %s got %T, want %T", name, ev, zero)
		}
		return fn(ctx, tx, typed)
	}}
}

// Start creates the bus tables, the consuming modules' inbox tables and one
// subscriber per handler, and returns once the router runs.
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	b.started = true
	handlers := make([]*handler, 0, len(b.handlers))
	for _, h := range b.handlers {
		handlers = append(handlers, h)
	}
	b.mu.Unlock()

	if err := ensureTables(ctx, b.db, b.topics()); err != nil {
		return err
	}
	inboxes := map[*gorm.DB]bool{}
	plans := map[*gorm.DB]*inBatch{}
	for _, h := range handlers {
		if !inboxes[h.consumer.DB] {
			if err := ensureInbox(ctx, h.consumer.DB); err != nil {
				return fmt.Errorf("bus inbox of module %s: %w", h.consumer.Module, err)
			}
			plan, err := b.planInBatch(ctx, h.consumer)
			if err != nil {
				return err
			}
			inboxes[h.consumer.DB] = true
			plans[h.consumer.DB] = plan
		}
		h.inBatch = plans[h.consumer.DB]
	}
	// Each subscriber holds a connection while its batch runs; the rest
	// serve replays, the overview and metrics.
	b.db.SetMaxOpenConns(max(b.cfg.MaxConns, 4+len(handlers)))

	// The groups about to run hold pruning back from now on, from their
	// first message if they are new. Recorded before any subscriber or
	// router is made: a Start that fails here leaves nothing to close.
	if err := b.startGroups(ctx, b.transport.groups(handlers)); err != nil {
		return err
	}

	logger := newLogAdapter(b.log, b.closing)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: b.cfg.CloseTimeout}, logger)
	if err != nil {
		return fmt.Errorf("bus router: %w", err)
	}
	if err := b.transport.subscribe(router, handlers, logger); err != nil {
		return err
	}
	b.router = router

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = cancel
	consumers := make([]Consumer, 0, len(inboxes))
	for _, h := range handlers {
		if inboxes[h.consumer.DB] {
			consumers = append(consumers, h.consumer)
			inboxes[h.consumer.DB] = false
		}
	}
	b.done.Add(4)
	go func() {
		defer b.done.Done()
		b.wake.listen(runCtx, b.cfg.DatabaseURL, b.notify.origin, b.log, b.outage)
	}()
	go func() {
		defer b.done.Done()
		b.pruneInboxes(runCtx, consumers)
	}()
	go func() {
		defer b.done.Done()
		b.heartbeat(runCtx)
	}()
	if b.cfg.PruneInterval > 0 {
		b.done.Add(1)
		go func() {
			defer b.done.Done()
			b.pruneLoop(runCtx)
		}()
	}
	ran := make(chan error, 1)
	go func() {
		defer b.done.Done()
		err := router.Run(runCtx)
		if err != nil {
			b.log.Error("bus router stopped", "err", err)
		}
		ran <- err
	}()
	// A router that fails to subscribe never reports running: fail then
	// instead of waiting forever.
	timeout := time.NewTimer(time.Minute)
	defer timeout.Stop()
	select {
	case <-router.Running():
		return nil
	case err := <-ran:
		return fmt.Errorf("bus router stopped before it ran: %v", err)
	case <-timeout.C:
		return errors.New("bus router did not start within a minute")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pruneInboxes forgets applied messages older than InboxRetention, hourly.
func (b *Bus) pruneInboxes(ctx context.Context, consumers []Consumer) {
	tick := time.NewTicker(time.Hour)
	defer tick.Stop()
	for {
		for _, c := range consumers {
			err := pruneInbox(ctx, c.DB, time.Now().Add(-b.cfg.InboxRetention))
			switch {
			case err == nil, ctx.Err() != nil, b.outage.Failed(err):
			default:
				b.log.Warn("bus: pruning the inbox failed", "module", c.Module, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// inboxPruneBatch is how many marks one statement of pruneInbox deletes:
// small enough for the module pool's statement timeout and for a short
// transaction (any open transaction holds back every subscriber's reads).
var inboxPruneBatch = 5000

// pruneInbox deletes the marks applied before cutoff, a batch per statement.
func pruneInbox(ctx context.Context, mod *gorm.DB, cutoff time.Time) error {
	for {
		res := mod.WithContext(ctx).Exec(`DELETE FROM processed_messages WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM processed_messages WHERE processed_at < ? LIMIT ?))`, cutoff, inboxPruneBatch)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected < int64(inboxPruneBatch) {
			return nil
		}
	}
}

// Close stops the subscribers, lets handlers in flight finish (or roll
// back when they outlive CloseTimeout) and releases the bus's connections.
// A message whose handler finished during Close may not be acknowledged;
// it is delivered again and found already applied.
func (b *Bus) Close() error {
	b.mu.Lock()
	select {
	case <-b.closing:
		b.mu.Unlock()
		return nil
	default:
		close(b.closing)
	}
	router := b.router
	b.mu.Unlock()
	var errs []error
	hardStop := time.AfterFunc(b.cfg.CloseTimeout, b.kill)
	if router != nil {
		errs = append(errs, router.Close())
	}
	hardStop.Stop()
	errs = append(errs, b.transport.close())
	b.kill()
	if b.stop != nil {
		b.stop()
	}
	b.done.Wait()
	b.notifierStop()
	<-b.notifierDone
	errs = append(errs, b.db.Close())
	return errors.Join(errs...)
}
