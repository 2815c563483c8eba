package accounts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// sessionChannel is where the database announces session changes
// (migration user 0005).
const sessionChannel = "modshop_users_sessions"

// listenerName is the listener connection's application_name.
const listenerName = "modshop-users-session-listener"

// Payloads of settle's barrier ("barrier:<nonce>") and of each
// listener's acknowledgement of it ("ack:<nonce>").
const (
	barrierPrefix = "barrier:"
	ackPrefix     = "ack:"
)

// The listener's rhythm: how long it waits for a notification before it
// checks that its connection still answers (a connection that died
// without a word must not leave the cache on for long), how long that
// check may take, and how long it waits before listening again. A settle
// waits for the acknowledgements at most settleWaitLimit: by then a
// listener that has not acknowledged has turned its cache off.
const (
	listenerQuiet   = time.Second
	listenerPing    = time.Second
	listenerRetry   = time.Second
	settleWaitLimit = listenerQuiet + listenerPing + 500*time.Millisecond
)

// ListenForSessionChanges keeps the session cache in step with the
// database until ctx ends: it listens on one of the module's connections,
// turns the cache on while it listens and off (empty, bypassed) whenever
// it does not, and listens again after a pause when the connection is
// lost.
func (s *Service) ListenForSessionChanges(ctx context.Context) {
	for {
		err := s.listen(ctx)
		s.sessions.setLive(false)
		if ctx.Err() != nil {
			return
		}
		s.log.WarnContext(ctx, "session cache off: its listener lost the database; every request asks it", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenerRetry):
		}
	}
}

// listen holds a connection of the module's pool for as long as it
// listens, and gives it back without its LISTEN (or closed).
func (s *Service) listen(ctx context.Context) error {
	sqlDB, err := s.store.db.DB()
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
		s.sessions.setLive(true)
		defer s.sessions.setLive(false) // before it stops listening
		return s.receive(ctx, pc)
	})
}

// receive passes each notification to the cache until the connection
// fails or ctx ends.
func (s *Service) receive(ctx context.Context, pc *pgx.Conn) error {
	for {
		wait, cancel := context.WithTimeout(ctx, listenerQuiet)
		n, err := pc.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			s.sessions.changed(n.Payload)
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

// settle returns once every process listening for session changes has
// applied every change committed before the call: a change this process
// made (a log-out, a suspension, a role change, a new password) is then
// refused by every process's next request. It sends a barrier, which
// each listener acknowledges once it has applied what came before it
// (PostgreSQL delivers notifications in commit order), and waits for as
// many acknowledgements as there are listeners, at most settleWaitLimit
// (a listener that cannot acknowledge by then has lost its connection
// and turned its cache off). When this process's own listener is not
// listening it cannot hear the acknowledgements, and returns at once.
func (s *Service) settle(ctx context.Context) {
	raw := make([]byte, 12)
	_, _ = rand.Read(raw)
	nonce := hex.EncodeToString(raw)
	acks, live := s.sessions.expect(nonce)
	if !live {
		return
	}
	defer s.sessions.unexpect(nonce)
	listeners, err := s.store.sessionListeners(ctx, listenerName)
	if err == nil {
		err = s.store.notifySessions(ctx, barrierPrefix+nonce)
	}
	if err != nil {
		s.log.WarnContext(ctx, "session change not confirmed by the other processes", "err", err)
		return
	}
	limit := time.NewTimer(settleWaitLimit)
	defer limit.Stop()
	for acked := 0; acked < listeners; acked++ {
		select {
		case <-acks:
		case <-limit.C:
			s.log.WarnContext(ctx, "session change not confirmed by every process in time",
				"listeners", listeners, "acknowledged", acked, "waited", settleWaitLimit)
			return
		case <-ctx.Done():
			return
		}
	}
}
