package accounts_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modshop/modshop/modules/user/internal/accounts"
	"github.com/modshop/modshop/platform/apperr"
)

// newService builds a second user service on a running shop's database,
// as another process of the module would be, with cfg.
func newService(t *testing.T, shop *userShop, cfg accounts.Config) *accounts.Service {
	t.Helper()
	replica := shop.Replica(t)
	return accounts.NewService(replica.DB, replica.Bus, slog.New(slog.DiscardHandler), cfg)
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

// busy reports a refusal for capacity: unavailable, saying when to come
// back (a 503 with Retry-After, by httpx's table).
func busy(err error) bool {
	var e *apperr.Error
	return errors.As(err, &e) && e.Kind == apperr.ErrUnavailable && e.RetryAfter >= time.Second
}

func TestPasswordHashes_SignUpsAndLogInsNeverRunMoreThanTheBound(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	cfg := unthrottled
	cfg.PasswordHashes = accounts.HashConfig{Slots: 2, Wait: 50 * time.Millisecond}
	s := newService(t, shop, cfg)
	most, entered, release := holdHashes(t, s)

	const n = 16 // half sign-ups, half log-ins (of names that do not exist: they hash all the same)
	results := make(chan error, n)
	for i := range n {
		name := unique("bound")
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
		if err := <-results; err != nil && !errors.Is(err, apperr.ErrUnauthorized) {
			t.Fatalf("a request that had a slot: %v, want a new account or 401", err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Fatalf("%d hashes ran at once, want the bound of 2", m)
	}
}

func TestLogin_RefusedForCapacityCostsNoAttempt(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
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

// A taken name is answered 409 before any hash and spends an attempt. Were
// a sign-up that finds no hashing slot given its attempt back, a prober who
// keeps the slots busy would pay for the names that exist and for nothing
// else: so a free name's 503, or its request ended while it waited for a
// slot, costs the attempt as a taken name's 409 does.
func TestSignUp_AProberPaysForFreeNamesAsForTakenOnes(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	taken := newCustomer(t, shop)
	cfg := unthrottled
	cfg.RegisterThrottle.PerClientBurst = 3
	// Two processes of the module, so two hashing gates sharing one
	// throttle: one refuses at once, the other lets a request wait.
	cfg.PasswordHashes = accounts.HashConfig{Slots: 1, Wait: 10 * time.Millisecond}
	refusing := newService(t, shop, cfg)
	cfg.PasswordHashes = accounts.HashConfig{Slots: 1, Wait: time.Hour}
	metrics := prometheus.NewRegistry()
	cfg.Metrics = metrics
	waiting := newService(t, shop, cfg)
	reg := func(ctx context.Context, s *accounts.Service, name string) error {
		_, err := s.SignUp(ctx, accounts.Registration{Username: name, Email: name + "@example.com", Password: password}, "192.0.2.1")
		return err
	}
	// The prober's hit.
	if err := reg(context.Background(), refusing, taken); !errors.Is(err, apperr.ErrConflict) {
		t.Fatalf("sign-up with a taken name: %v, want 409", err)
	}
	// Someone else's log-ins hold each process's only slot.
	others := make(chan error, 2)
	holdTheSlot := func(s *accounts.Service) (entered <-chan struct{}, release func()) {
		_, entered, release = holdHashes(t, s)
		go func() {
			_, err := s.Login(context.Background(), accounts.Credentials{Login: "nobody", Password: password}, "192.0.2.99", "test")
			others <- err
		}()
		<-entered
		return entered, release
	}
	entered, release1 := holdTheSlot(refusing)
	_, release2 := holdTheSlot(waiting)
	defer func() { release1(); release2(); <-others; <-others }()
	if err := whileFull(t, entered, func() error { return reg(context.Background(), refusing, "mallory") }); !busy(err) {
		t.Fatalf("sign-up of a free name while the slot is held: %v, want 503", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- reg(ctx, waiting, "mallory") }()
	waitForMetric(t, metrics, "modshop_password_hash_waits_total", 1)
	cancel()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("sign-up that ended while it waited for a slot: %v, want context.Canceled", err)
	}
	// Three sign-ups in a burst of three: the next is turned away.
	if err := reg(context.Background(), refusing, "mallory"); !errors.Is(err, apperr.ErrThrottled) {
		t.Fatalf("a fourth sign-up from the address in a burst of 3: %v, want 429 (the free name's tries were given back)", err)
	}
}

// waitForMetric waits until the counter name in r reaches want.
func waitForMetric(t *testing.T, r *prometheus.Registry, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		families, err := r.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name && len(f.GetMetric()) > 0 && f.GetMetric()[0].GetCounter().GetValue() >= want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %v", name, want)
		}
	}
}
