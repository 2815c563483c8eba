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
