package accounts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
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
// listener that has not acknowledged has turned its cache off, or has not
// been heard from for that long, which stops its cache's answers too
// (sessionCache.freshFor). A listening one is heard from every
// listenerQuiet or so; the margin above that is for a busy machine.
const (
	listenerQuiet   = time.Second
	listenerPing    = time.Second
	listenerRetry   = time.Second
	settleWaitLimit = listenerQuiet + listenerPing + 3*time.Second
)

// ListenForSessionChanges keeps the session cache in step with the
// database until ctx ends: it listens on one of the module's connections,
// turns the cache on while it listens and off (empty, bypassed) whenever
// it does not, and listens again after a pause when the connection is
// lost.
func (s *Service) ListenForSessionChanges(ctx context.Context) {
	for {
		err := s.store.listenForSessions(ctx, s.sessions)
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
