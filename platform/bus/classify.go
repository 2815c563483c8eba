package bus

import (
	"errors"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/modshop/modshop/platform/db"
)

// Transient and permanent failures.
//
// A handler's error is either transient (about the moment: the database
// or the broker could not do the work now, or the transaction lost a
// race with another) or permanent (about the message or the code: it
// will fail the same way next time). The two are retried differently
// (consume.go): a transient failure ends the batch, the group waits
// outside any transaction and reads again from its offset, for as long as
// it takes; it never uses the message's attempts and never makes a dead
// letter. A permanent one is tried MaxAttempts times and then parked as a
// dead letter, so that the messages behind it keep flowing.

// classified is an error whose handler said which kind it is.
type classified struct {
	err       error
	transient bool
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// Transient marks err as transient: the bus retries the message for as
// long as it takes, without counting attempts. Use it for a failure the
// bus cannot recognise as transient by itself (a remote service that is
// down, say). It returns nil for nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, transient: true}
}

// Permanent marks err as permanent: the message is tried MaxAttempts
// times and then parked as a dead letter, even if the error behind it
// looks transient (a handler that knows a lock timeout will not clear,
// say). It returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &classified{err: err, transient: false}
}

// IsTransient reports whether err is a transient failure: marked so with
// Transient; or the database unavailable (db.IsUnavailable: a connection
// lost or refused, SQLSTATE class 08, 57P01–57P03, class 53, a statement
// cancelled, a context deadline during a database call); or a conflict
// with another transaction (40001 serialization failure, 40P01 deadlock,
// 55P03 lock not available); or the connection to the message broker
// lost. A mark made with Transient or Permanent wins over the rest, the
// outermost mark first. Everything else is permanent, among them a
// handler's panic and a cancelled context.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	var c *classified
	if errors.As(err, &c) {
		return c.transient
	}
	if errors.Is(err, errRetryLater) { // a batch that a transient failure ended
		return true
	}
	switch db.SQLState(err) {
	case "40001", "40P01", "55P03":
		return true
	}
	if db.IsUnavailable(err) {
		return true
	}
	return brokerLost(err)
}

// brokerLost reports whether err is RabbitMQ's connection or channel going
// away (the broker restarting, the network between): amqp091's ErrClosed,
// the server forcing the connection closed, or the connection failing
// under the client (amqp091 reports a read or write that failed as a
// FrameError: "EOF"). Its other *amqp.Error values (a queue not found,
// access refused) need someone to act, and stay permanent.
func brokerLost(err error) bool {
	if errors.Is(err, amqp.ErrClosed) {
		return true
	}
	var amqpErr *amqp.Error
	return errors.As(err, &amqpErr) && (amqpErr.Code == amqp.ConnectionForced || amqpErr.Code == amqp.FrameError)
}
