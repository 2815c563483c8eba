package bus

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5/pgconn"
)

// logAdapter is the logger the bus gives Watermill (its router, its
// subscribers, the forwarder). Watermill's Info is our Debug: it narrates
// every subscription. And the bus's own shutdown is not an error: once
// Close has begun, Watermill reports the queries it cancelled, the
// transactions whose connections those cancellations closed and the
// handlers that gave their messages back as errors ("could not rollback
// tx for querying message: conn closed", "Handler returned error: bus
// closing"). Those are logged at Debug. Any other error, and every error
// while the bus runs, stays an error. Watermill passes the error behind the
// one it reports in its fields (a failed rollback names the query error
// that made it roll back, in "query_err"): only when that one, and every
// other error among the fields, was caused by closing too is it Debug.
//
// Nor is a transient failure (IsTransient) an error: the database away (a
// commit on a lost connection, say), a lost race, a batch that a
// handler's transient failure ended. It is retried, and logged at Debug;
// the database going away is logged once at WARN by the bus's own loops
// (db.Outage). The connection to RabbitMQ lost (watermill-amqp reports it
// once per loss, then reconnects) is a WARN.
type logAdapter struct {
	inner   watermill.LoggerAdapter
	closing <-chan struct{}
	log     *slog.Logger // for the WARN that watermill's adapter cannot say
	fields  watermill.LogFields
}

func newLogAdapter(log *slog.Logger, closing <-chan struct{}) watermill.LoggerAdapter {
	return &logAdapter{
		inner:   watermill.NewSlogLoggerWithLevelMapping(log, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}),
		closing: closing,
		log:     log,
	}
}

func (l *logAdapter) Error(msg string, err error, fields watermill.LogFields) {
	if l.isClosing() && causedByClosing(err) && fieldsCausedByClosing(fields) {
		l.inner.Debug(msg+" (the bus is closing)", fields.Add(watermill.LogFields{"error": errText(err)}))
		return
	}
	if IsTransient(err) && fieldsTransient(fields) {
		if brokerLost(err) {
			args := []any{"error", errText(err)}
			for k, v := range l.fields.Add(fields) {
				args = append(args, k, v)
			}
			l.log.Warn(msg+" (the broker is away: reconnecting)", args...)
			return
		}
		l.inner.Debug(msg+" (transient: retried)", fields.Add(watermill.LogFields{"error": errText(err)}))
		return
	}
	l.inner.Error(msg, err, fields)
}

func (l *logAdapter) Info(msg string, fields watermill.LogFields)  { l.inner.Info(msg, fields) }
func (l *logAdapter) Debug(msg string, fields watermill.LogFields) { l.inner.Debug(msg, fields) }
func (l *logAdapter) Trace(msg string, fields watermill.LogFields) { l.inner.Trace(msg, fields) }

func (l *logAdapter) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return &logAdapter{inner: l.inner.With(fields), closing: l.closing, log: l.log, fields: l.fields.Add(fields)}
}

func (l *logAdapter) isClosing() bool {
	select {
	case <-l.closing:
		return true
	default:
		return false
	}
}

// causedByClosing reports whether err is what closing the bus does to
// work in flight: a cancelled context, a connection that the cancellation
// closed (pgx closes a connection whose query it cancels, so the rollback
// after it fails), or a handler giving its message back.
func causedByClosing(err error) bool {
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, errClosing) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, sql.ErrTxDone)
}

// fieldsCausedByClosing reports whether every error among fields was
// caused by closing the bus.
func fieldsCausedByClosing(fields watermill.LogFields) bool {
	for _, v := range fields {
		if err, ok := v.(error); ok && !causedByClosing(err) {
			return false
		}
	}
	return true
}

// fieldsTransient reports whether every error among fields is transient.
func fieldsTransient(fields watermill.LogFields) bool {
	for _, v := range fields {
		if err, ok := v.(error); ok && !IsTransient(err) {
			return false
		}
	}
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
