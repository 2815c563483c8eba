package user_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// twoShops starts two shops on one database: two processes of the user
// module, as replicas behind a load balancer are.
func logIn(api *testkit.API, login, password string) *testkit.Response {
	return api.Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
}

func TestLogin_TwoProcessesShareTheClientThrottle(t *testing.T) {
	t.Parallel()
	first, second := twoShops(t, func(c *settings) { c.Throttle.PerClientBurst = 4 })
	for i, api := range []*testkit.API{first.API, second.API, first.API, second.API} {
		if r := logIn(api, unique("ghost"), "whatever123"); r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s, want 401", i+1, r.Status, r.Body)
		}
	}
	for name, api := range map[string]*testkit.API{"first": first.API, "second": second.API} {
		r := logIn(api, unique("ghost"), "whatever123")
		if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("5th attempt from one address, on the %s process: %d (Retry-After %q), want 429: the processes count apart",
				name, r.Status, r.Header.Get("Retry-After"))
		}
	}
}

func TestLogin_TwoProcessesShareTheAccountThrottle(t *testing.T) {
	t.Parallel()
	first, second := twoShops(t, nil)
	register(t, first.API, "dora", "dora@example.com", "dora's password")
	for i, api := range []*testkit.API{first.API, second.API, first.API, second.API, first.API} {
		if r := logIn(api, "dora", "guess "+strconv.Itoa(i)); r.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i+1, r.Status)
		}
	}
	if r := logIn(second.API, "dora", "dora's password"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("6th attempt, on the second process: %d, want 429 (five guesses were made, across both)", r.Status)
	}
}

func TestRegister_ThrottledPerClientAddress(t *testing.T) {
	t.Parallel()
	shop := startUser(t, func(c *settings) {
		c.RegisterThrottle.PerClientBurst = 3
		c.TrustedProxies = "127.0.0.1" // so that the test can speak for another address
	})
	// Invalid registrations are refused before the throttle: they cost nothing.
	for range 3 {
		if r := register(t, shop.API, "x", "not an address", "short"); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("invalid registration: %d", r.Status)
		}
	}
	register(t, shop.API, "kim", "kim@example.com", "kim's password")
	for i, name := range []string{"kim", "lee"} { // a taken name counts too
		r := register(t, shop.API, name, name+"2@example.com", "a long password")
		if r.Status != http.StatusConflict && r.Status != http.StatusCreated {
			t.Fatalf("registration %d: %d %s", i+2, r.Status, r.Body)
		}
	}
	r := register(t, shop.API, "max", "max@example.com", "max's password")
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("4th registration from one address: %d %s, want 429", r.Status, r.Body)
	}
	r.Problem(t)
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", r.Header.Get("Retry-After"))
	}
	// Another address is not held back by this one.
	r = shop.API.Do("POST", "/api/v1/users", map[string]string{"username": "max", "email": "max@example.com", "password": "max's password"},
		testkit.Header("X-Forwarded-For", "192.0.2.7"))
	if r.Status != http.StatusCreated {
		t.Fatalf("registration from another address: %d %s, want 201", r.Status, r.Body)
	}
	if n := countUsers(t, shop.DatabaseURL); n != 3 {
		t.Fatalf("users = %d, want 3 (kim, lee, max)", n)
	}
}

func TestRegister_TwoProcessesShareTheThrottle(t *testing.T) {
	t.Parallel()
	first, second := twoShops(t, func(c *settings) { c.RegisterThrottle.PerClientBurst = 2 })
	register(t, first.API, "nia", "nia@example.com", "nia's password")
	register(t, second.API, "oli", "oli@example.com", "oli's password")
	if r := register(t, first.API, "pat", "pat@example.com", "pat's password"); r.Status != http.StatusTooManyRequests {
		t.Fatalf("3rd registration from one address across two processes: %d, want 429", r.Status)
	}
}

func TestRegister_TakenNameIsAnsweredWithoutHashing(t *testing.T) {
	t.Parallel()
	shop := startUser(t, func(c *settings) { c.RegisterThrottle.PerClientBurst = 100 })
	register(t, shop.API, "quinn", "quinn@example.com", "quinn's password")
	before := metric(t, shop, "modshop_password_hashes_total")
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			email := "quinn" + strconv.Itoa(i) + "@example.com"
			if i%2 == 1 { // the e-mail taken, under another name
				statuses[i] = register(t, shop.API, "quinn"+strconv.Itoa(i), "quinn@example.com", "another password").Status
				return
			}
			statuses[i] = register(t, shop.API, "QUINN", email, "another password").Status
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusConflict {
			t.Fatalf("registration %d of a taken name: %d, want 409", i, s)
		}
	}
	if after := metric(t, shop, "modshop_password_hashes_total"); after != before {
		t.Fatalf("%v passwords hashed for %d registrations of taken names, want none", after-before, n)
	}
}

func TestPasswordHashes_TheBoundIsTheSettingOrSizedFromMemory(t *testing.T) {
	t.Parallel()
	set := startUser(t, func(c *settings) { c.PasswordHashes.Slots = 3 })
	if got := metric(t, set, "modshop_password_hash_slots"); got != 3 {
		t.Fatalf("modshop_password_hash_slots = %v with MODSHOP_PASSWORD_HASHES=3", got)
	}
	sized := startUser(t)
	if got := metric(t, sized, "modshop_password_hash_slots"); got < 1 {
		t.Fatalf("modshop_password_hash_slots = %v sized from memory, want at least 1", got)
	}
}

// metric reads one unlabelled sample from the shop's /metrics.
func metric(t *testing.T, shop *shop, name string) float64 {
	t.Helper()
	resp, err := http.Get(shop.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}
