package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/modules/user/internal/accounts"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
)

// newService builds a second user service on a running shop's database,
// as another process of the module would be, with cfg.
func newService(t *testing.T, shop *apptest.Shop, cfg accounts.Config) *accounts.Service {
	t.Helper()
	ctx := context.Background()
	pool, err := db.OpenModule(ctx, shop.DatabaseURL, "users", 16)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	g, err := db.Gorm(pool)
	if err != nil {
		t.Fatal(err)
	}
	registry := bus.NewRegistry()
	registry.Register(events.UserRegistered{})
	b, err := bus.New(ctx, bus.Config{DatabaseURL: shop.DatabaseURL}, registry)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return accounts.NewService(g, b, slog.New(slog.DiscardHandler), cfg)
}

// unthrottled leaves the throttles out of the way: every request comes from one address.
var unthrottled = accounts.Config{
	Throttle:         accounts.ThrottleConfig{PerAccountBurst: 1000, PerClientBurst: 1000, Window: time.Minute},
	RegisterThrottle: accounts.RegisterThrottleConfig{PerClientBurst: 1000, Window: time.Minute},
}

// holdHashes counts s's hashes in flight (most is the most at once) and
// keeps each one running until release is called (at the latest when t
// ends); entered receives one value per hash that started.
func holdHashes(t *testing.T, s *accounts.Service) (most *atomic.Int32, entered chan struct{}, release func()) {
	var running atomic.Int32
	most = new(atomic.Int32)
	entered = make(chan struct{}, 100)
	released := make(chan struct{})
	release = sync.OnceFunc(func() { close(released) })
	t.Cleanup(release)
	accounts.HoldHashes(s, func() {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- struct{}{}
		<-released
		running.Add(-1)
	})
	return most, entered, release
}

// whileFull runs call while every slot is held and returns its error; it
// fails t when call starts a hash anyway, or hangs.
func whileFull(t *testing.T, entered <-chan struct{}, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-entered:
		t.Fatal("a hash started while every slot was taken")
	case <-time.After(time.Minute):
		t.Fatal("a request beyond the bound hangs instead of being refused")
	}
	return nil
}

func busy(err error) bool {
	var p *httpx.Problem
	return errors.As(err, &p) && p.Status == http.StatusServiceUnavailable && p.RetryAfter >= 1
}

func TestPasswordHashes_SignUpsAndLogInsNeverRunMoreThanTheBound(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	cfg := unthrottled
	cfg.PasswordHashes = accounts.HashConfig{Slots: 2, Wait: 50 * time.Millisecond}
	s := newService(t, shop, cfg)
	most, entered, release := holdHashes(t, s)

	const n = 16 // half sign-ups, half log-ins (of names that do not exist: they hash all the same)
	results := make(chan error, n)
	for i := range n {
		name := apptest.Unique("bound")
		go func() {
			var err error
			if i%2 == 0 {
				_, err = s.SignUp(context.Background(), accounts.Registration{Username: name, Email: name + "@example.com", Password: password}, "192.0.2.1")
			} else {
				_, err = s.Login(context.Background(), accounts.Credentials{Login: name, Password: password}, "192.0.2.1", "test")
			}
			results <- err
		}()
	}
	<-entered
	<-entered
	// Two hashes run and are held: every other request must come back
	// refused (503 with Retry-After) after its short wait, not hang.
	for range n - 2 {
		select {
		case err := <-results:
			if !busy(err) {
				t.Fatalf("a request beyond the bound returned %v, want 503 with Retry-After", err)
			}
		case <-entered:
			t.Fatal("a third hash started while two were running")
		case <-time.After(time.Minute):
			t.Fatal("a request beyond the bound hangs instead of being refused")
		}
	}
	release()
	for range 2 {
		var p *httpx.Problem
		if err := <-results; err != nil && !(errors.As(err, &p) && p.Status == http.StatusUnauthorized) {
			t.Fatalf("a request that had a slot: %v, want a new account or 401", err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Fatalf("%d hashes ran at once, want the bound of 2", m)
	}
}

func TestLogin_RefusedForCapacityCostsNoAttempt(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	name := newCustomer(t, shop)
	cfg := unthrottled
	cfg.Throttle.PerAccountBurst = 1
	cfg.Throttle.PerClientBurst = 1
	cfg.PasswordHashes = accounts.HashConfig{Slots: 1, Wait: 10 * time.Millisecond}
	s := newService(t, shop, cfg)
	_, entered, release := holdHashes(t, s)

	// Someone else's log-in (from another address) holds the only slot.
	other := make(chan error, 1)
	go func() {
		_, err := s.Login(context.Background(), accounts.Credentials{Login: "nobody", Password: password}, "192.0.2.99", "test")
		other <- err
	}()
	<-entered
	err := whileFull(t, entered, func() error {
		_, err := s.Login(context.Background(), accounts.Credentials{Login: name, Password: password}, "192.0.2.1", "test")
		return err
	})
	if !busy(err) {
		t.Fatalf("log-in while the slot is held: %v, want 503", err)
	}
	release()
	<-other
	// Nothing was checked, so neither the account's one attempt nor the
	// address's was spent.
	sess, err := s.Login(context.Background(), accounts.Credentials{Login: name, Password: password}, "192.0.2.1", "test")
	if err != nil || sess.Token == "" {
		t.Fatalf("log-in after a refusal for capacity: %v, want a session", err)
	}
}

func TestSignUp_RefusedForCapacityCostsNoAttempt(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	cfg := unthrottled
	cfg.RegisterThrottle.PerClientBurst = 1
	cfg.PasswordHashes = accounts.HashConfig{Slots: 1, Wait: 10 * time.Millisecond}
	s := newService(t, shop, cfg)
	_, entered, release := holdHashes(t, s)

	other := make(chan error, 1)
	go func() {
		_, err := s.Login(context.Background(), accounts.Credentials{Login: "nobody", Password: password}, "192.0.2.99", "test")
		other <- err
	}()
	<-entered
	reg := func(name string) error {
		_, err := s.SignUp(context.Background(), accounts.Registration{Username: name, Email: name + "@example.com", Password: password}, "192.0.2.1")
		return err
	}
	if err := whileFull(t, entered, func() error { return reg("mallory") }); !busy(err) {
		t.Fatalf("sign-up while the slot is held: %v, want 503", err)
	}
	release()
	<-other
	if err := reg("mallory"); err != nil {
		t.Fatalf("sign-up after a refusal for capacity: %v, want the account", err)
	}
	var p *httpx.Problem
	if err := reg("mallory2"); !errors.As(err, &p) || p.Status != http.StatusTooManyRequests {
		t.Fatalf("a second sign-up from the address in a burst of 1: %v, want 429", err)
	}
}
