package accounts

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// listenForSessions listens on sessionChannel on a connection of its own,
// made as the module's pool makes its connections but outside the pool, so
// that the listener never takes a connection requests need (a pool of one
// would otherwise have none left to log in with). It feeds c (live while
// it listens) until the connection fails or ctx ends, then closes the
// connection. It is the session cache's listener (session_listener.go).
func (s store) listenForSessions(ctx context.Context, c *sessionCache) error {
	cfg, err := s.connConfig(ctx)
	if err != nil {
		return err
	}
	// Named (settle counts the listeners by this name), and so that an
	// operator can tell it in pg_stat_activity.
	cfg.RuntimeParams["application_name"] = listenerName
	pc, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("session listener: connect: %w", err)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), listenerPing)
		defer cancel()
		_ = pc.Close(closeCtx)
	}()
	if _, err := pc.Exec(ctx, "LISTEN "+sessionChannel); err != nil {
		return fmt.Errorf("session listener: listen: %w", err)
	}
	c.setLive(true)
	defer c.setLive(false) // before it stops listening
	return receiveSessionChanges(ctx, pc, c)
}

// connConfig is the configuration the module's pool makes its
// connections with, read from one of them (held only for that).
func (s store) connConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, fmt.Errorf("session listener: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("session listener: the pool's configuration: %w", err)
	}
	defer func() { _ = conn.Close() }()
	var cfg *pgx.ConnConfig
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("session listener: a %T is not a pgx connection", dc)
		}
		cfg = sc.Conn().Config()
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	// The copy still names the pool connection's notification buffer:
	// this connection's notifications must come to its own.
	cfg.OnNotification = nil
	return cfg, nil
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
