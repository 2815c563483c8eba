package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsUnavailable reports whether err means that the database could not do
// the work at this moment, for reasons that have nothing to do with the
// work itself: the same statement, sent again later, may well succeed.
//
// It is true for
//   - a connection that could not be made (refused, unreachable, the server
//     starting up or shutting down, too many connections, even a refused
//     log-in: every pgconn.ConnectError), or that was lost or reset
//     midway (an unexpected EOF from pgx, ECONNRESET, EPIPE, pgx's "conn closed",
//     driver.ErrBadConn, sql.ErrConnDone);
//   - the server saying so: SQLSTATE class 08 (connection exception),
//     57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect
//     now, 57P05 idle session timeout, class 53 (insufficient resources:
//     too many connections, out of memory, disk full);
//   - no answer in the time allowed: 57014 (query cancelled: a statement
//     timeout, or a cancel request), or a context deadline that expired
//     during a database call.
//
// It is false for everything else, among them what the statement itself
// got wrong (constraints, syntax, permissions, no rows), conflicts with
// other transactions (serialization failure, deadlock: see below), and a
// context that was cancelled (the caller gave up; the database did
// nothing wrong).
//
// Two rules build on it. HTTP (httpx.Errors) answers such an error with
// 503 and Retry-After instead of 500. The bus's rule for failed handlers
// (transient: retried for as long as it takes, never a dead letter;
// permanent: a few attempts, then a dead letter) counts as transient what
// IsUnavailable reports, plus the concurrency conflicts 40001, 40P01 and
// 55P03 (lock not available), which are about the moment too but not about
// the database's health, so HTTP keeps them apart.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	// First: a log-in the server refused (a wrong password, a database
	// dropped) is a ConnectError around a PgError, and is not the work's
	// fault either.
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableState(pgErr.Code)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	case errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		// The server went away mid-conversation; database/sql hands pgx's
		// "unexpected EOF" on bare. (Input cut short ends the same way:
		// code that decodes a request must answer that itself, as
		// httpx.DecodeJSON does, not pass the error on.)
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ETIMEDOUT):
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true // any other failure of the network between us and the server
	}
	return false
}

// unavailableState reports whether a SQLSTATE means the server could not
// serve the statement at the moment (see IsUnavailable).
func unavailableState(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), // connection exception
		strings.HasPrefix(code, "53"): // insufficient resources
		return true
	}
	switch code {
	case "57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now
		"57P05", // idle_session_timeout
		"57014": // query_canceled: statement_timeout, or a cancel request
		return true
	}
	return false
}
