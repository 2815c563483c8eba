package app_test

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// TestStatementTimeout_ARequestPastItAnswers503AndThePoolServesOn makes
// requests wait on a lock held elsewhere (a slow path any shop meets: a
// long maintenance statement, a stuck transaction). Past the statement
// timeout they answer 503 with Retry-After instead of holding their
// connection; once the lock is gone the same requests succeed, on module
// pools of one connection each, so no timed-out request kept its own.
func TestStatementTimeout_ARequestPastItAnswers503AndThePoolServesOn(t *testing.T) {
	t.Parallel()
	const timeout = 200 * time.Millisecond
	shop := apptest.Start(t, func(c *app.Config) {
		c.StatementTimeout = timeout
		c.DBMaxConns = 1
	})
	w := sagasuite.NewWorld(t, shop, map[string]int{"BEANS": 5})
	id := w.Products["BEANS"]
	requests := []struct {
		method, path string
		body         any
		opts         []testkit.Option
	}{
		{"GET", "/api/v1/products/" + id, nil, nil}, // a read
		{"POST", "/api/v1/products/" + id + "/stock", map[string]int{"delta": 3}, []testkit.Option{testkit.Bearer(w.Admin)}}, // a write, in a transaction
	}

	unlock := lockInventory(t, shop.DatabaseURL, 10*timeout)
	for _, rq := range requests {
		r := w.API.Do(rq.method, rq.path, rq.body, rq.opts...)
		if r.Status != http.StatusServiceUnavailable {
			t.Errorf("past the statement timeout: %s %s answered %d %s, want 503", rq.method, rq.path, r.Status, r.Body)
			continue
		}
		r.Problem(t)
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("past the statement timeout: %s %s: Retry-After %q", rq.method, rq.path, r.Header.Get("Retry-After"))
		}
	}
	unlock()

	for _, rq := range requests {
		if r := w.API.Do(rq.method, rq.path, rq.body, rq.opts...); r.Status != http.StatusOK {
			t.Errorf("lock gone: %s %s answered %d %s, want 200", rq.method, rq.path, r.Status, r.Body)
		}
	}
	if got := w.Available(t, "BEANS"); got != 8 {
		t.Errorf("available %d after one restock of 3 on 5, want 8 (the timed-out restock changed nothing)", got)
	}
	shop.CheckInvariants(t)
}

// lockInventory takes the product module's inventory table for itself
// until unlock is called. Should a request wait on it longer than
// giveUp (the statement timeout would have ended it long before), the
// lock is released at once: the test then fails instead of hanging.
func lockInventory(t *testing.T, dbURL string, giveUp time.Duration) (unlock func()) {
	t.Helper()
	ctx := context.Background()
	admin, err := db.Open(ctx, dbURL, 2)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE products.inventory IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		defer tx.Rollback()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if waitingLongerThan(ctx, admin, giveUp) {
				t.Errorf("a request waited on the lock for more than %s: it is not bounded", giveUp)
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		admin.Close()
	}
}

func waitingLongerThan(ctx context.Context, admin *sql.DB, d time.Duration) bool {
	var n int
	err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'
		  AND now() - query_start > make_interval(secs => $1)`, d.Seconds()).Scan(&n)
	return err == nil && n > 0
}

func TestStatementTimeout_NegativeOrBelowAMillisecondIsRefused(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{-time.Second, time.Microsecond} {
		cfg := app.DefaultConfig()
		cfg.StatementTimeout = d
		if _, err := app.Open(context.Background(), cfg, apptest.Logger()); err == nil || !strings.Contains(err.Error(), "MODSHOP_STATEMENT_TIMEOUT") {
			t.Errorf("statement timeout %s: %v, want it refused", d, err)
		}
	}
	if cfg := app.DefaultConfig(); cfg.StatementTimeout != 5*time.Second {
		t.Errorf("default statement timeout %s, want 5s", cfg.StatementTimeout)
	}
}
