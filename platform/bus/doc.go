// Package bus is modshop's event bus: Watermill on PostgreSQL
// (watermill-sql). It knows nothing about shops.
//
// # Publishing and handling
//
// A module publishes events in its own transaction ([Bus.Publish]): they
// are delivered if and only if that transaction commits, an outbox for
// free. [Handle] subscribes a typed handler under a name that is also its
// consumer group; a [Consumer] names the handler's module and its database
// handle, acting as the module's role. Delivery is at least once, and each
// handler applies each message once: it records the message id in its
// module's own schema (processed_messages) in the same transaction as its
// effect. Inside a handler, [MessageMetadata] tells which message it
// handles, and what it publishes inherits the message's correlation id and
// names it as the cause. LISTEN/NOTIFY after the commit wakes subscribers
// within milliseconds without hot polling (notify.go, wakeup.go).
//
// # Transports
//
// Config.Transport chooses what carries messages from Publish to the
// handlers (transport.go). With postgres, the default, the bus tables are
// the queues and every module shares the bus's database (postgres.go).
// With rabbitmq they are each process's outbox, which a forwarder relays
// to RabbitMQ, where every handler reads a durable queue of its own
// (rabbitmq.go): for modules on databases of their own. Everything else
// (inboxes, retries, dead letters, pruning, the overview's figures) is the
// bus's, the same for both.
//
// # Failures
//
// A handler's failure is transient (the database or the broker away, a
// lost race) or permanent (everything else, a panic included), and a
// handler can say which ([Transient], [Permanent]). A transient failure
// makes its group pause outside any transaction and read again from its
// offset, for as long as it takes (transient.go). A permanent one is
// retried a few times and then parked as a dead letter that staff can
// inspect, replay or discard ([Bus.Routes]), so that the messages behind it
// keep flowing (consume.go, deadletters.go).
//
// # Applying in the batch
//
// A subscriber reads up to BatchSize messages in one transaction and
// acknowledges them with one offset update at its end. When a consuming
// module's tables live on the bus's own database, its handlers run inside
// that same transaction: each message in a savepoint, acting as the
// module's role with the module's search path, with the inbox mark written
// beside the effect. The batch then commits once, with its offset, instead
// of once per message: the effect, the mark and the acknowledgement are one
// atomic commit, and the commits per message drop from about two to a
// fraction (see docs/bus.md for the figures). batch.go plans and applies
// the batch; batchtx.go adapts its transaction to watermill-sql, to the
// handlers' gorm handles and to pgx.
//
// The walls hold: inside the savepoint the connection acts as the module's
// role, and it is set back to the bus's role before the savepoint is
// released, so the offset update and any dead letter are written as the
// bus.
//
// What it costs: a handler's effects become visible when its batch commits
// (milliseconds later under load), and while a batch runs after its first
// write it holds a transaction id, which holds back what every subscriber
// on the cluster may read. Handlers must therefore be quick and never wait
// on anything outside the database; a handler that fails permanently is
// retried inside the batch (the backoff adds up to under a second with the
// defaults) before its message becomes a dead letter. Retrying in a
// separate transaction instead could wait forever on a row lock that an
// earlier message of the same batch holds. A transient failure ends the
// batch instead (transient.go).
//
// A batch holds the row locks of every message it has applied until it
// commits, so two batches touching the same rows could deadlock across
// their messages. A message after the first therefore waits on a lock at
// most 5 ms; then the batch commits what it has and the message runs first
// in a fresh transaction (checkpoint, in batch.go). A consumer whose
// handlers lock rows that others lock too can take a transaction per
// message instead (Consumer.SeparateTransactions).
//
// # Retention
//
// Messages are pruned once they are older than Config.Retention and every
// active consumer group of their topic has passed them; a group not seen
// for Config.GroupExpiry holds nothing back (retention.go).
package bus
