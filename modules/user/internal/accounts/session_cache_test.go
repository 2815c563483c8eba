package accounts

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// noPublisher drops the events a use case announces: these tests look at
// sessions only.
type noPublisher struct{}

func (noPublisher) Publish(context.Context, *gorm.DB, ...bus.Event) error { return nil }

// processes are two processes of the user module on one database, each
// with its session cache and its listener running, and the database URL
// (superuser) for changes made behind their backs.
type processes struct {
	a, b *Service
	url  string
	gdb  *gorm.DB
}

func twoProcesses(t *testing.T) processes {
	t.Helper()
	url := testkit.NewDatabase(t)
	gdb := usersDB(t, url)
	p := processes{url: url, gdb: gdb}
	p.a = listening(t, gdb)
	p.b = listening(t, gdb)
	return p
}

// listening builds a service on gdb and runs its listener until the test
// ends; it returns once the listener listens.
func listening(t *testing.T, gdb *gorm.DB) *Service {
	t.Helper()
	s := NewService(gdb, noPublisher{}, slog.New(slog.DiscardHandler), Config{PasswordHashes: HashConfig{Slots: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.ListenForSessionChanges(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitFor(t, "the listener listens", s.sessions.isLive)
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// account makes an account with roles and a session; it returns the
// account's id and the session's token.
func (p processes) account(t *testing.T, roles ...string) (string, string) {
	t.Helper()
	id := uuid.NewString()
	name := "u" + id[:8]
	if err := p.gdb.Exec(`INSERT INTO users (id, username, email, password_hash) VALUES (?, ?, ?, 'x')`, id, name, name+"@example.com").Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if err := p.gdb.Exec(`INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, id, r).Error; err != nil {
			t.Fatal(err)
		}
	}
	token, hash, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.a.store.createSession(context.Background(), id, hash, time.Now().Add(time.Hour), "", ""); err != nil {
		t.Fatal(err)
	}
	return id, token
}

// cached authenticates token on s twice and checks that s keeps the answer
// (so what follows is answered by the cache unless something drops it).
func cached(t *testing.T, s *Service, token string) auth.Identity {
	t.Helper()
	for range 2 {
		if _, err := s.Authenticate(context.Background(), token); err != nil {
			t.Fatalf("authenticate before the change: %v", err)
		}
	}
	hash, _ := hashToken(token)
	id, ok := s.sessions.lookup(tokenKey(hash))
	if !ok {
		t.Fatal("the session cache does not keep the answer: the test would not test it")
	}
	return id
}

func refused(t *testing.T, s *Service, token, why string) {
	t.Helper()
	if id, err := s.Authenticate(context.Background(), token); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("%s: the other process still answers %+v, %v; want the session refused", why, id, err)
	}
}

// behindTheirBacks runs sql as superuser with the triggers off: a change
// nobody is told about, as one made while a listener is not listening
// would be for that listener.
func (p processes) behindTheirBacks(t *testing.T, sql string, args ...any) {
	t.Helper()
	admin, err := db.Open(context.Background(), p.url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	conn, err := admin.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `SET session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `RESET session_replication_role`); err != nil {
		t.Fatal(err)
	}
}

func TestSessionCache_LogOutOnOneProcessIsRefusedAtOnceOnTheOther(t *testing.T) {
	t.Parallel()
	p := twoProcesses(t)
	_, token := p.account(t, "customer")
	cached(t, p.b, token)
	cached(t, p.a, token)
	if err := p.a.Logout(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	refused(t, p.b, token, "logged out on the other process")
	refused(t, p.a, token, "logged out on this process")
}

func TestSessionCache_SuspensionOnOneProcessIsRefusedAtOnceOnTheOther(t *testing.T) {
	t.Parallel()
	p := twoProcesses(t)
	id, token := p.account(t, "customer")
	admin, _ := p.account(t, "customer", auth.RoleAdmin)
	cached(t, p.b, token)
	if _, err := p.a.Suspend(context.Background(), auth.Identity{UserID: admin, Roles: []string{auth.RoleAdmin}}, id); err != nil {
		t.Fatal(err)
	}
	refused(t, p.b, token, "suspended on the other process")
}

func TestSessionCache_RoleChangeOnOneProcessAppliesAtOnceOnTheOther(t *testing.T) {
	t.Parallel()
	p := twoProcesses(t)
	id, token := p.account(t, "customer")
	admin, _ := p.account(t, "customer", auth.RoleAdmin)
	caller := auth.Identity{UserID: admin, Roles: []string{auth.RoleAdmin}}
	if got := cached(t, p.b, token); got.HasRole(auth.RoleAdmin) {
		t.Fatalf("a customer has the admin role before it is granted: %+v", got)
	}
	for _, roles := range [][]string{{auth.RoleAdmin, "customer"}, {"customer"}} {
		if _, err := p.a.SetRoles(context.Background(), caller, id, roles); err != nil {
			t.Fatal(err)
		}
		got, err := p.b.Authenticate(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Roles, roles) {
			t.Fatalf("roles set to %v on one process; the other says %v", roles, got.Roles)
		}
		cached(t, p.b, token)
	}
}

func TestSessionCache_ChangesAnnouncedByTheDatabaseReachEveryProcess(t *testing.T) {
	t.Parallel()
	p := twoProcesses(t)
	// Changes no use case of the module made (another tool, a person at
	// psql): the database's triggers announce them all the same.
	cases := []struct {
		name string
		sql  string
	}{
		{"a session ended", `UPDATE users.sessions SET revoked_at = now() WHERE user_id = $1`},
		{"a session deleted", `DELETE FROM users.sessions WHERE user_id = $1`},
		{"an account suspended", `UPDATE users.users SET suspended_at = now(), suspended_by = $1 WHERE id = $1`},
		{"an account deleted", `DELETE FROM users.users WHERE id = $1`},
	}
	admin, err := db.Open(context.Background(), p.url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, c := range cases {
		id, token := p.account(t, "customer")
		cached(t, p.b, token)
		if _, err := admin.ExecContext(context.Background(), c.sql, id); err != nil {
			t.Fatal(err)
		}
		// Nothing in this process waited for the notification: allow it
		// the time to arrive, no more.
		hash, _ := hashToken(token)
		waitFor(t, c.name+" dropped from the cache", func() bool { _, ok := p.b.sessions.lookup(tokenKey(hash)); return !ok })
		refused(t, p.b, token, c.name)
	}
}

func TestSessionCache_AnswersFromMemoryOnlyWhileTheListenerListens(t *testing.T) {
	t.Parallel()
	p := twoProcesses(t)
	id, token := p.account(t, "customer")
	cached(t, p.b, token)

	// A change nobody is told about: the cache answers (which is how the
	// tests above know they test it) ...
	p.behindTheirBacks(t, `UPDATE users.sessions SET revoked_at = now() WHERE user_id = $1`, id)
	if _, err := p.b.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("the cache did not answer: %v", err)
	}

	// ... until its listener loses the database: from then on every
	// lookup asks it, so no answer is stale.
	admin, err := db.Open(context.Background(), p.url, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(),
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '`+listenerName+`'`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the listener notices it lost the database", func() bool { return !p.b.sessions.isLive() })
	refused(t, p.b, token, "the listener is down")

	// Listening again, it starts empty: nothing from before comes back.
	waitFor(t, "the listener listens again", p.b.sessions.isLive)
	refused(t, p.b, token, "the listener listens again")
}

func TestSessionCache_AnswerLivesNoLongerThanItsBoundOrItsSession(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c := newSessionCache(func() time.Time { return now })
	c.setLive(true)
	id := auth.Identity{UserID: "u1", Roles: []string{"customer"}}
	short, long := tokenKey{1}, tokenKey{2}
	gen, _ := c.begin()
	c.keep(short, id, now.Add(time.Second), gen)
	c.keep(long, id, now.Add(time.Hour), gen)
	if _, ok := c.lookup(short); !ok {
		t.Fatal("a fresh answer is not kept")
	}
	now = now.Add(time.Second)
	if _, ok := c.lookup(short); ok {
		t.Fatal("an answer outlives its session")
	}
	if _, ok := c.lookup(long); !ok {
		t.Fatal("an answer within its bound is dropped")
	}
	now = now.Add(sessionCacheMaxAge)
	c.heardFrom() // the listener is still heard from: only the bound ends the answer
	if _, ok := c.lookup(long); ok {
		t.Fatalf("an answer outlives the cache's bound of %v", sessionCacheMaxAge)
	}
}

func TestSessionCache_AnswerReadBeforeAChangeIsNotKept(t *testing.T) {
	t.Parallel()
	c := newSessionCache(time.Now)
	c.setLive(true)
	id := auth.Identity{UserID: "u1"}
	gen, _ := c.begin() // the lookup starts, reads the database ...
	c.changed("u2")     // ... a change is announced meanwhile (any account) ...
	c.keep(tokenKey{1}, id, time.Now().Add(time.Hour), gen)
	if _, ok := c.lookup(tokenKey{1}); ok {
		t.Fatal("an answer read before an announced change is kept")
	}
	c.setLive(false)
	gen, ok := c.begin()
	c.keep(tokenKey{1}, id, time.Now().Add(time.Hour), gen)
	if _, hit := c.lookup(tokenKey{1}); ok || hit {
		t.Fatal("the cache keeps or gives answers while its listener is not listening")
	}
}

// TestSessionCache_AListenerNotHeardFromAnswersNothing: a listener that
// stalls (no notification, no ping that succeeds) stops the cache's
// answers once it has been silent longer than a settle waits, and they
// come back when it is heard from again.
func TestSessionCache_AListenerNotHeardFromAnswersNothing(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	c := newSessionCache(func() time.Time { return now })
	c.maxAge = time.Hour // only the listener's silence ends the answer here
	c.setLive(true)
	id := auth.Identity{UserID: "u1"}
	gen, _ := c.begin()
	c.keep(tokenKey{1}, id, now.Add(time.Hour), gen)
	now = now.Add(settleWaitLimit)
	if _, ok := c.lookup(tokenKey{1}); !ok {
		t.Fatal("an answer is dropped while the listener was heard from within a settle's wait")
	}
	now = now.Add(time.Millisecond)
	if _, ok := c.lookup(tokenKey{1}); ok {
		t.Fatalf("the cache answers %v after its listener was last heard from", settleWaitLimit+time.Millisecond)
	}
	if _, ok := c.begin(); ok {
		t.Fatal("a silent listener's cache takes new answers")
	}
	c.heardFrom()
	if _, ok := c.lookup(tokenKey{1}); !ok {
		t.Fatal("the answer does not come back once the listener is heard from again")
	}
}
