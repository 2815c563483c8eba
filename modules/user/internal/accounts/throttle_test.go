package accounts

// The throttles live in PostgreSQL (users.throttle_buckets): these tests
// run them against a migrated users schema on the test server, with the
// clock in the test's hands.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/testkit"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a test's time, which it moves by hand.
type clock struct{ at atomic.Int64 }

func newClock(at time.Time) *clock {
	c := &clock{}
	c.set(at)
	return c
}

func (c *clock) set(at time.Time)      { c.at.Store(at.UnixMicro()) }
func (c *clock) now() time.Time        { return time.UnixMicro(c.at.Load()).UTC() }
func (c *clock) after(d time.Duration) { c.set(t0.Add(d)) }

// usersDB migrates the user module's schema on a new database and returns
// a handle acting as the module's role, as the module's own is.
func usersDB(t *testing.T, url string) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	admin, err := db.Open(ctx, url, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := db.Provision(ctx, admin, "users"); err != nil {
		t.Fatal(err)
	}
	pool, err := db.OpenModule(ctx, url, "users", 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	files, err := migrations.For("user")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx, pool, "users", files, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	g, err := db.Gorm(pool)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// newTestThrottle is one throttle on a fresh database, on c's time.
func newTestThrottle(t *testing.T, c *clock, burst int, window time.Duration) *throttle {
	t.Helper()
	table := &throttleTable{db: usersDB(t, testkit.NewDatabase(t)), now: c.now}
	return table.throttle("test", burst, window)
}

func take(t *testing.T, th *throttle, key string) time.Duration {
	t.Helper()
	wait, err := th.take(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return wait
}

func rows(t *testing.T, table *throttleTable) int {
	t.Helper()
	var n int64
	if err := table.db.Raw(`SELECT count(*) FROM throttle_buckets`).Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestThrottle_AllowsTheBurstThenMakesTheKeyWait(t *testing.T) {
	t.Parallel()
	// 3 attempts per 30 s: one attempt comes back every 10 s.
	th := newTestThrottle(t, newClock(t0), 3, 30*time.Second)
	for i := range 3 {
		if w := take(t, th, "k"); w != 0 {
			t.Fatalf("attempt %d: wait = %v, want 0 within the burst", i+1, w)
		}
	}
	if w := take(t, th, "k"); w != 10*time.Second {
		t.Fatalf("after the burst: wait = %v, want 10s", w)
	}
}

func TestThrottle_WaitShrinksAsTimePassesAndIsNeverZeroWhileBlocked(t *testing.T) {
	t.Parallel()
	c := newClock(t0)
	th := newTestThrottle(t, c, 3, 30*time.Second)
	for range 3 {
		take(t, th, "k")
	}
	// A refused attempt spends nothing, so each of these sees the same bucket.
	tests := []struct {
		after time.Duration
		want  time.Duration
	}{
		{0, 10 * time.Second},
		{4 * time.Second, 6 * time.Second},
		{9*time.Second + 500*time.Millisecond, time.Second}, // rounded up, not down to 0
		{9*time.Second + 999*time.Millisecond, time.Second},
		{10 * time.Second, 0},
	}
	for _, tt := range tests {
		c.after(tt.after)
		if got := take(t, th, "k"); got != tt.want {
			t.Errorf("wait %v after the burst = %v, want %v", tt.after, got, tt.want)
		}
	}
	// The attempt at 10 s spent the token that had come back.
	if got := take(t, th, "k"); got != 10*time.Second {
		t.Errorf("right after the token came back and was spent: wait %v, want 10s", got)
	}
	c.after(time.Hour)
	for i := range 3 {
		if got := take(t, th, "k"); got != 0 {
			t.Fatalf("an hour later, attempt %d waits %v: the bucket did not refill", i+1, got)
		}
	}
}

func TestThrottle_RetryAfterIsAWholePositiveNumberOfSeconds(t *testing.T) {
	t.Parallel()
	c := newClock(t0)
	th := newTestThrottle(t, c, 5, 15*time.Minute)
	for range 5 {
		take(t, th, "login:alice")
	}
	for _, after := range []time.Duration{0, time.Second, 179 * time.Second, 179*time.Second + 999*time.Millisecond} {
		c.after(after)
		w := take(t, th, "login:alice")
		if w <= 0 || w%time.Second != 0 {
			t.Fatalf("wait %v after the burst = %v, want a positive whole number of seconds", after, w)
		}
		p, _ := httpx.ProblemFor(apperr.Throttled("slow down", w))
		if p == nil || p.Status != 429 || p.RetryAfter < 1 || p.RetryAfter != int(w.Seconds()) {
			t.Fatalf("problem for wait %v = %+v", w, p)
		}
	}
}

func TestThrottle_KeysAreCountedApart(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 1, time.Minute)
	take(t, th, "client:192.0.2.1")
	if w := take(t, th, "client:192.0.2.1"); w == 0 {
		t.Fatal("the client that used its attempt is not held back")
	}
	if w := take(t, th, "client:192.0.2.2"); w != 0 {
		t.Fatalf("another client must wait %v because of the first", w)
	}
}

func TestThrottle_ThrottlesOfOneTableCountApart(t *testing.T) {
	t.Parallel()
	table := &throttleTable{db: usersDB(t, testkit.NewDatabase(t)), now: newClock(t0).now}
	login, register := table.throttle("login-client", 1, time.Hour), table.throttle("register-client", 1, time.Hour)
	take(t, login, "192.0.2.1")
	if w := take(t, register, "192.0.2.1"); w != 0 {
		t.Fatalf("a registration waits %v because the address logged in", w)
	}
	if w := take(t, login, "192.0.2.1"); w == 0 {
		t.Fatal("the log-in throttle forgot its attempt")
	}
}

func TestThrottle_ForgetLetsTheKeyStraightIn(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 2, time.Hour)
	for _, k := range []string{"login:alice", "login:alice", "login:bob", "login:bob"} {
		take(t, th, k)
	}
	if err := th.forget(context.Background(), "login:alice"); err != nil { // alice logged in
		t.Fatal(err)
	}
	if w := take(t, th, "login:alice"); w != 0 {
		t.Errorf("after forget, alice waits %v", w)
	}
	if w := take(t, th, "login:bob"); w == 0 {
		t.Error("forgetting alice also let bob in")
	}
}

func TestThrottle_RefundGivesTheAttemptBack(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 2, time.Hour)
	take(t, th, "k")
	take(t, th, "k")
	if err := th.refund(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	if w := take(t, th, "k"); w != 0 {
		t.Fatalf("after a refund: wait %v, want the refunded attempt", w)
	}
	if w := take(t, th, "k"); w == 0 {
		t.Fatal("a refund gave back more than one attempt")
	}
}

func TestThrottle_ZeroBurstStillAllowsOneAttempt(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 0, time.Minute)
	if w := take(t, th, "k"); w != 0 {
		t.Fatalf("first attempt waits %v", w)
	}
	if w := take(t, th, "k"); w != time.Minute {
		t.Fatalf("second attempt waits %v, want 1m", w)
	}
}

func TestThrottle_AClockBehindGrantsNothingMore(t *testing.T) {
	t.Parallel()
	// Two processes whose clocks disagree share a bucket (in production
	// both use the database's clock; this is the worst case anyway).
	c := newClock(t0)
	th := newTestThrottle(t, c, 2, time.Minute)
	take(t, th, "k")
	take(t, th, "k")
	c.after(-10 * time.Minute)
	if w := take(t, th, "k"); w == 0 {
		t.Fatal("an attempt stamped earlier than the bucket's last got a token")
	}
}

func TestThrottle_PruneDropsOnlyRefilledBuckets(t *testing.T) {
	t.Parallel()
	c := newClock(t0)
	th := newTestThrottle(t, c, 2, time.Minute) // one attempt back every 30 s
	take(t, th, "old")
	c.after(50 * time.Second)
	take(t, th, "recent")
	c.after(60 * time.Second)
	if err := th.table.prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := th.table.db.Raw(`SELECT key FROM throttle_buckets ORDER BY key`).Scan(&keys).Error; err != nil {
		t.Fatal(err)
	}
	if strings.Join(keys, ",") != th.key("recent") {
		t.Fatalf("rows after pruning: %v, want only recent's (old has refilled; recent still counts one attempt)", keys)
	}
	take(t, th, "recent")
	if w := take(t, th, "recent"); w == 0 {
		t.Fatal("recent got a fresh burst: its bucket was pruned while it still counted attempts")
	}
}

func TestThrottle_TableStaysBoundedAsNewKeysArrive(t *testing.T) {
	t.Parallel()
	c := newClock(t0)
	th := newTestThrottle(t, c, 1, time.Second)
	const keys = 3 * pruneEvery
	for i := range keys {
		c.after(time.Duration(i) * time.Second)
		take(t, th, fmt.Sprintf("client:%d", i))
	}
	if n := rows(t, th.table); n > pruneEvery {
		t.Fatalf("%d rows kept for %d keys whose attempts long refilled: the table grows without bound", n, keys)
	}
}

func TestThrottle_ConcurrentAttemptsSpendExactlyTheBurst(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 5, time.Minute)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			w, err := th.take(context.Background(), "k")
			if err != nil {
				t.Error(err)
				return
			}
			if w == 0 {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 5 {
		t.Fatalf("%d of 40 concurrent attempts allowed, want exactly the burst of 5", n)
	}
}

func TestThrottle_TwoProcessesShareOneBucket(t *testing.T) {
	t.Parallel()
	// Two tables on two pools of one database: two processes of the module.
	url := testkit.NewDatabase(t)
	c := newClock(t0)
	first := (&throttleTable{db: usersDB(t, url), now: c.now}).throttle("login-client", 3, time.Minute)
	second := (&throttleTable{db: usersDB(t, url), now: c.now}).throttle("login-client", 3, time.Minute)
	take(t, first, "192.0.2.1")
	take(t, second, "192.0.2.1")
	take(t, first, "192.0.2.1")
	if w := take(t, second, "192.0.2.1"); w == 0 {
		t.Fatal("the second process allowed a fourth attempt in a burst of 3: the processes count apart")
	}
}

func TestThrottle_OverlongKeysFitTheColumn(t *testing.T) {
	t.Parallel()
	th := newTestThrottle(t, newClock(t0), 1, time.Minute)
	long := strings.Repeat("é", 150) // 300 bytes
	take(t, th, long)
	if w := take(t, th, long); w == 0 {
		t.Fatal("an overlong key is not counted")
	}
	if w := take(t, th, long+"x"); w != 0 {
		t.Fatal("two overlong keys share a bucket")
	}
}

func TestLogin_WhatWasTypedIsNotStoredInTheClear(t *testing.T) {
	t.Parallel()
	table := usersDB(t, testkit.NewDatabase(t))
	s := NewService(table, nil, slog.New(slog.DiscardHandler), Config{PasswordHashes: HashConfig{Slots: 1}})
	// A password typed into the login field: no account has that name, so
	// it gets a bucket of its own.
	const typed, addr = "hunter2-is-my-password", "192.0.2.7"
	_, err := s.Login(context.Background(), Credentials{Login: typed, Password: "whatever it is"}, addr, "test")
	if !errors.Is(err, apperr.ErrUnauthorized) {
		t.Fatalf("log-in as nobody: %v, want 401", err)
	}
	var keys []string
	if err := table.Raw(`SELECT key FROM throttle_buckets`).Scan(&keys).Error; err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("buckets after one log-in: %q, want the account's and the address's", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, typed) || strings.Contains(k, addr) {
			t.Errorf("throttle key %q shows what was typed or where from", k)
		}
	}
}

func TestThrottle_RowsWithKeysInTheOldPlainFormAreNotReadAsNewKeys(t *testing.T) {
	t.Parallel()
	// Before keys were hashed, a key was the throttle's name, a colon and
	// the caller's key as given (hashed only when over 200 bytes). Rows left
	// in that form say nothing about the new keys, even one whose caller's
	// key was shaped like a hash, until they are pruned.
	c := newClock(t0)
	th := newTestThrottle(t, c, 1, time.Hour)
	sum := sha256.Sum256([]byte("k"))
	hashed := hex.EncodeToString(sum[:])
	sum = sha256.Sum256([]byte("test:k"))
	whole := hex.EncodeToString(sum[:])
	for _, old := range []string{"test:k", "test:sha256:" + hashed, "test:sha256:" + whole, "test:" + hashed, "test:" + whole} {
		// Each an empty bucket: an attempt read against it waits an hour.
		err := th.table.db.Exec(`INSERT INTO throttle_buckets (key, full_at, granted, touched_at) VALUES (?, ?, true, ?)`,
			old, t0.Add(time.Hour), t0).Error
		if err != nil {
			t.Fatal(err)
		}
	}
	if w := take(t, th, "k"); w != 0 {
		t.Fatalf("the first attempt at k waits %v: a row of the old form was read as its bucket", w)
	}
	if n := rows(t, th.table); n != 6 {
		t.Fatalf("%d rows after one attempt beside 5 old ones, want 6: the attempt overwrote an old row", n)
	}
	c.after(2 * time.Hour)
	if err := th.table.prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, th.table); n != 0 {
		t.Fatalf("%d rows left once every bucket refilled, want 0: old rows are pruned like any", n)
	}
}
