package app_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/testkit"
)

// TestMaxRequestsInFlight_BeyondItIs503AtOnceAndProbesStillAnswer holds
// requests in flight on a lock (as a slow database would) until the bound
// is reached: the next request is refused at once, with Retry-After,
// while the operators' probes keep answering.
func TestMaxRequestsInFlight_BeyondItIs503AtOnceAndProbesStillAnswer(t *testing.T) {
	t.Parallel()
	const bound = 2
	shop := apptest.Start(t, func(c *app.Config) {
		c.MaxRequestsInFlight = bound
		c.StatementTimeout = time.Minute // the held requests wait on the lock, not on a timeout
	})
	w := sagasuite.NewWorld(t, shop, map[string]int{"BEANS": 5})
	id := w.Products["BEANS"]

	unlock := lockInventory(t, shop.DatabaseURL, 50*time.Second)
	var wg sync.WaitGroup
	for range bound {
		wg.Go(func() {
			if status, body := plainGet(t, shop.URL+"/api/v1/products/"+id); status != http.StatusOK {
				t.Errorf("a held request: %d %s", status, body)
			}
		})
	}
	waitForLockWaiters(t, shop.DatabaseURL, bound)

	resp, err := http.Get(shop.URL + "/api/v1/categories")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != http.StatusServiceUnavailable ||
		err != nil || s < 1 || resp.Header.Get("Content-Type") != httpx.ProblemContentType {
		t.Errorf("with %d requests in flight: %d Retry-After %q %s, want 503 problem+json with Retry-After",
			bound, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, body := plainGet(t, shop.URL+p); status != http.StatusOK {
			t.Errorf("%s with %d requests in flight: %d %.200s; operators must still see the shop", p, bound, status, body)
		}
	}
	unlock()
	wg.Wait()
	if status, body := plainGet(t, shop.URL+"/api/v1/categories"); status != http.StatusOK {
		t.Fatalf("once the held requests ended: %d %s", status, body)
	}
}

func TestMaxRequestsInFlight_DefaultIsSizedAndNegativeIsRefused(t *testing.T) {
	t.Parallel()
	if c := app.DefaultConfig(); c.MaxRequestsInFlight != 0 {
		t.Errorf("default MaxRequestsInFlight %d, want 0 (sized from memory)", c.MaxRequestsInFlight)
	}
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = testkit.NewDatabase(t)
	cfg.MaxRequestsInFlight = -1
	shop, err := app.Open(context.Background(), cfg, apptest.Logger())
	if err == nil {
		shop.Close(context.Background())
		t.Fatal("MODSHOP_MAX_REQUESTS_IN_FLIGHT=-1 accepted")
	}
	if !strings.Contains(err.Error(), "MODSHOP_MAX_REQUESTS_IN_FLIGHT") {
		t.Fatalf("MODSHOP_MAX_REQUESTS_IN_FLIGHT=-1: %v, want the setting named", err)
	}
}

func plainGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitForLockWaiters waits until n statements of the test's database wait
// on a lock.
func waitForLockWaiters(t *testing.T, dbURL string, n int) {
	t.Helper()
	admin, err := db.Open(context.Background(), dbURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lockWaiters(t, admin) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests never waited on the lock", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lockWaiters(t *testing.T, admin *sql.DB) int {
	t.Helper()
	var got int
	if err := admin.QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}
