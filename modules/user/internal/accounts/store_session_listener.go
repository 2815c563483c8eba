package accounts

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// listenForSessions holds a connection of the module's pool for as long
// as it listens on sessionChannel, feeding c (live while it listens), and
// gives it back without its LISTEN (or closed). It is the session
// cache's listener (session_listener.go).
func (s store) listenForSessions(ctx context.Context, c *sessionCache) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("session listener: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("session listener: connect: %w", err)
	}
	defer func() { _ = conn.Close() }()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("session listener: a %T is not a pgx connection", dc)
		}
		pc := sc.Conn()
		defer unlisten(pc)
		if _, err := pc.Exec(ctx, "LISTEN "+sessionChannel); err != nil {
			return fmt.Errorf("session listener: listen: %w", err)
		}
		// Named once it listens (settle counts the listeners by this
		// name), and so that an operator can tell it in pg_stat_activity.
		if _, err := pc.Exec(ctx, "SET application_name = '"+listenerName+"'"); err != nil {
			return fmt.Errorf("session listener: name: %w", err)
		}
		c.setLive(true)
		defer c.setLive(false) // before it stops listening
		return receiveSessionChanges(ctx, pc, c)
	})
}

// receiveSessionChanges passes each notification to c, and acknowledges
// each barrier, until the connection fails or ctx ends.
func receiveSessionChanges(ctx context.Context, pc *pgx.Conn, c *sessionCache) error {
	for {
		wait, cancel := context.WithTimeout(ctx, listenerQuiet)
		n, err := pc.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			c.changed(n.Payload)
			if nonce, ok := strings.CutPrefix(n.Payload, barrierPrefix); ok {
				// Every notification committed before the barrier has
				// been applied (PostgreSQL delivers in commit order).
				if _, err := pc.Exec(ctx, "SELECT pg_notify($1, $2)", sessionChannel, ackPrefix+nonce); err != nil {
					return fmt.Errorf("session listener: acknowledge: %w", err)
				}
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err):
			ping, cancel := context.WithTimeout(ctx, listenerPing)
			err = pc.Ping(ping)
			cancel()
			if err != nil {
				return fmt.Errorf("session listener: ping: %w", err)
			}
			c.heardFrom()
		default:
			return fmt.Errorf("session listener: wait: %w", err)
		}
	}
}

// unlisten stops listening on a connection going back to the pool; a
// connection that cannot is closed (the pool then drops it).
func unlisten(pc *pgx.Conn) {
	if pc.IsClosed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), listenerPing)
	defer cancel()
	if _, err := pc.Exec(ctx, "RESET application_name; UNLISTEN *"); err != nil {
		_ = pc.Close(ctx)
	}
}
