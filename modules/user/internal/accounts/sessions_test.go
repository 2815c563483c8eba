package accounts

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/testkit"
)

// sessionStore is the user module's store on a fresh database, with one
// account; it returns the account's id.
func sessionStore(t *testing.T) (store, string) {
	t.Helper()
	s := store{db: usersDB(t, testkit.NewDatabase(t))}
	id := uuid.NewString()
	err := s.db.Exec(`INSERT INTO users (id, username, email, password_hash) VALUES (?, 'rita', 'rita@example.com', 'x')`, id).Error
	if err != nil {
		t.Fatal(err)
	}
	return s, id
}

func tokenHash(i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "token %d", i))
	return h[:]
}

func loggedIn(t *testing.T, s store, i int) bool {
	t.Helper()
	_, err := s.sessionUser(context.Background(), tokenHash(i))
	if err != nil && err != errNoUser {
		t.Fatal(err)
	}
	return err == nil
}

func liveSessions(t *testing.T, s store, userID string) int {
	t.Helper()
	var n int64
	if err := s.db.Raw(`SELECT count(*) FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > now()`, userID).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestCreateSession_KeepsAtMostTheBoundPerUserEndingTheOldest(t *testing.T) {
	t.Parallel()
	s, rita := sessionStore(t)
	expires := time.Now().Add(time.Hour)
	const logins = maxSessionsPerUser + 5
	for i := range logins {
		if err := s.createSession(context.Background(), rita, tokenHash(i), expires, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := liveSessions(t, s, rita); n != maxSessionsPerUser {
		t.Fatalf("%d log-ins left %d live sessions, want %d", logins, n, maxSessionsPerUser)
	}
	for i := range logins {
		if want := i >= logins-maxSessionsPerUser; loggedIn(t, s, i) != want {
			t.Errorf("session %d of %d logged in: %v, want %v (the oldest end)", i+1, logins, !want, want)
		}
	}
}

func TestCreateSession_TheBoundHoldsWhenLogInsRace(t *testing.T) {
	t.Parallel()
	s, rita := sessionStore(t)
	expires := time.Now().Add(time.Hour)
	const logins = 2 * maxSessionsPerUser
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			if err := s.createSession(context.Background(), rita, tokenHash(i), expires, "", ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := liveSessions(t, s, rita); n != maxSessionsPerUser {
		t.Fatalf("%d log-ins at once left %d live sessions, want %d", logins, n, maxSessionsPerUser)
	}
}

func TestCreateSession_EndedSessionsOfTheUserGoAtTheNextLogIn(t *testing.T) {
	t.Parallel()
	s, rita := sessionStore(t)
	ctx := context.Background()
	for i := range 3 {
		if err := s.createSession(ctx, rita, tokenHash(i), time.Now().Add(time.Hour), "", ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.revokeSession(ctx, tokenHash(0)); err != nil { // logged out
		t.Fatal(err)
	}
	if err := s.db.Exec(`UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE token_hash = ?`, tokenHash(1)).Error; err != nil {
		t.Fatal(err)
	}
	if err := s.createSession(ctx, rita, tokenHash(3), time.Now().Add(time.Hour), "", ""); err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := s.db.Raw(`SELECT count(*) FROM sessions WHERE user_id = ?`, rita).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d session rows after a log-out, an expiry and a log-in, want the 2 live ones: ended sessions pile up per user", n)
	}
}

// deadSessions adds n sessions of userID that expired weeks ago, in
// expiry order as in physical order (the order every scan of them takes),
// the first expiring at the given second of the day 30 days ago; it
// returns their ids in that order.
func deadSessions(t *testing.T, s store, userID string, from, n int) []string {
	t.Helper()
	var ids []string
	err := s.db.Raw(`INSERT INTO sessions (user_id, token_hash, expires_at)
		SELECT ?, sha256(convert_to(? || ' ' || g, 'UTF8')), now() - interval '30 days' + g * interval '1 second'
		  FROM generate_series(?::int, ?::int) g ORDER BY g
		RETURNING id`, userID, userID, from, from+n-1).Scan(&ids).Error
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// lockWaits counts the connections to this test's database that wait for
// a lock (pg_locks: the module's role may not see what other connections
// run, even its own).
func lockWaits(t *testing.T, s store) int {
	t.Helper()
	var n int64
	if err := s.db.Raw(`SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		 WHERE NOT l.granted AND a.datname = current_database()`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

// waitUntil polls cond until it holds, failing t after a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after a minute until %s", what)
		}
	}
}

func TestCreateSession_LogInsOfTwoUsersDoNotDeadlockOverLongDeadSessions(t *testing.T) {
	t.Parallel()
	s, rita := sessionStore(t)
	sam := uuid.NewString()
	if err := s.db.Exec(`INSERT INTO users (id, username, email, password_hash) VALUES (?, 'sam', 'sam@example.com', 'x')`, sam).Error; err != nil {
		t.Fatal(err)
	}
	// Weeks-dead sessions, in the order any scan meets them: one of rita's,
	// a purge batch of sam's, a purge batch of rita's.
	held := deadSessions(t, s, rita, 0, 1)[0]
	deadSessions(t, s, sam, 1, 100)
	deadSessions(t, s, rita, 101, 100)

	// Someone else (a log-out, say) has rita's first dead session locked
	// for a moment: her log-in, once under way, waits for it.
	other := s.db.Begin()
	defer other.Rollback()
	var locked []string
	if err := other.Raw(`SELECT id FROM sessions WHERE id = ? FOR UPDATE`, held).Scan(&locked).Error; err != nil || len(locked) != 1 {
		t.Fatalf("lock rita's first dead session: %v (%d rows)", err, len(locked))
	}
	expires := time.Now().Add(time.Hour)
	ritaDone, samDone := make(chan error, 1), make(chan error, 1)
	go func() { ritaDone <- s.createSession(context.Background(), rita, tokenHash(1), expires, "", "") }()
	waitUntil(t, "rita's log-in waits for her locked session", func() bool { return lockWaits(t, s) == 1 })
	// Sam logs in meanwhile, and goes as far as he can.
	go func() { samDone <- s.createSession(context.Background(), sam, tokenHash(2), expires, "", "") }()
	var samErr error
	samFinished := false
	waitUntil(t, "sam's log-in ends or waits too", func() bool {
		select {
		case samErr = <-samDone:
			samFinished = true
			return true
		default:
			return lockWaits(t, s) == 2
		}
	})
	if err := other.Rollback().Error; err != nil {
		t.Fatal(err)
	}
	if err := <-ritaDone; err != nil {
		t.Errorf("rita's log-in: %v", err)
	}
	if !samFinished {
		samErr = <-samDone
	}
	if samErr != nil {
		t.Errorf("sam's log-in: %v", samErr)
	}
	var left int64
	if err := s.db.Raw(`SELECT count(*) FROM sessions`).Scan(&left).Error; err != nil {
		t.Fatal(err)
	}
	if left != 2 {
		t.Errorf("%d sessions left after both log-ins, want their 2 new ones: the dead ones were not all cleared", left)
	}
}
