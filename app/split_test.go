package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	"github.com/modshop/modshop/platform/testkit"
)

// TestSplit runs the shop as it runs split: the real binary, one process
// per module (--modules=user, product, order, payment), each on its own
// port, on one fresh database with the PostgreSQL bus, and modshop gateway
// in front. The saga's end-to-end suite runs through the gateway, exactly
// as modules/order runs it against the single binary; then processes are
// killed mid-load.
//
// The saga's deadlines are long here, so that every order of the load
// ends confirmed, however long a restart takes on a busy machine.
//
// Not parallel: five processes hold some 35 connections, and the test
// server's 100 are shared with every other test running meanwhile.
func TestSplit(t *testing.T) {
	recv := startReceiver(t)
	split := apptest.StartSplit(t, apptest.SplitOptions{Env: tracingEnv(map[string]string{
		"MODSHOP_STOCK_TIMEOUT":   "10m",
		"MODSHOP_PAYMENT_TIMEOUT": "10m",
		// The saga suite and the subtests register their customers from 127.0.0.1.
		"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": "100",
	}, recv)})
	t.Run("saga suite", func(t *testing.T) { sagasuite.Run(t, split) })
	t.Run("one trace per order", func(t *testing.T) { oneTracePerOrder(t, split, recv) })
	t.Run("kill -9 mid-load", func(t *testing.T) { killMidLoad(t, split) })
	t.Run("one bus view through the gateway", func(t *testing.T) { busViewThroughGateway(t, split) })
	t.Run("copies and backfill", func(t *testing.T) { copiesAndBackfill(t, split, "order") })
}

// TestSplitDatabases is TestSplit with a database per module: each
// process on its own database, events between them through RabbitMQ (the
// rabbitmq transport: each process's outbox forwarded to the broker, each
// handler on its own durable queue). The same saga suite, the same kills.
func TestSplitDatabases(t *testing.T) {
	recv := startReceiver(t)
	split := apptest.StartSplit(t, apptest.SplitOptions{DatabasePerModule: true, Env: tracingEnv(map[string]string{
		"MODSHOP_STOCK_TIMEOUT":   "10m",
		"MODSHOP_PAYMENT_TIMEOUT": "10m",
		// The saga suite and the subtests register their customers from 127.0.0.1.
		"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": "100",
	}, recv)})
	for m, url := range split.ModuleDatabases {
		for n, other := range split.ModuleDatabases {
			if m != n && url == other {
				t.Fatalf("modules %s and %s share a database", m, n)
			}
		}
	}
	t.Run("saga suite", func(t *testing.T) { sagasuite.Run(t, split) })
	t.Run("one trace per order", func(t *testing.T) { oneTracePerOrder(t, split, recv) })
	t.Run("kill -9 mid-load", func(t *testing.T) { killMidLoad(t, split) })
	t.Run("one bus view through the gateway", func(t *testing.T) { busViewThroughGateway(t, split) })
	t.Run("copies and backfill", func(t *testing.T) { copiesAndBackfill(t, split, "order") })
}

// TestSplitReplicas is TestSplit with a second process of the product,
// order and payment modules beside the first, on the same database: the
// two of a module share each of its handlers' consumer group (one batch at
// a time, by the group's advisory lock), the payment worker's claims and
// the deadline and expiry sweeps. The same saga suite and kills; while the
// first product and payment processes are down, their second ones carry
// the saga on, and everything still happens once.
func TestSplitReplicas(t *testing.T) {
	split := apptest.StartSplit(t, apptest.SplitOptions{
		Replicas: []string{"product", "order", "payment"},
		Env: map[string]string{
			"MODSHOP_STOCK_TIMEOUT":   "10m",
			"MODSHOP_PAYMENT_TIMEOUT": "10m",
			// The saga suite and the subtests register their customers from 127.0.0.1.
			"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": "100",
		},
	})
	t.Run("saga suite", func(t *testing.T) { sagasuite.Run(t, split) })
	t.Run("kill -9 mid-load", func(t *testing.T) { killMidLoad(t, split) })
	// The second product and payment processes did part of the work.
	for process, handler := range map[string]string{"product-2": "product.reserve_stock", "payment-2": "payment.charge"} {
		if n := processed(t, split.ProcessURL(process), handler); n == 0 {
			t.Errorf("the %s process applied no message of %s", process, handler)
		}
	}
}

// processed reads how many messages handler applied in the process at
// base, from its /metrics.
func processed(t *testing.T, base, handler string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `modshop_bus_messages_processed_total{handler="` + handler + `"} `
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// killMidLoad places 50 orders in three waves and kills (SIGKILL) the
// product process after the first and the payment process after the
// second, while the saga of the first orders is under way, then restarts
// both. Every order must end confirmed, sold exactly once, charged exactly
// once, and the invariants must hold.
func killMidLoad(t *testing.T, split *apptest.Split) {
	_, admin := split.Admin(t)
	_, customer := split.Customer(t)
	api := split.Client(t)
	const stock = 500
	r := api.Do("POST", "/api/v1/products", map[string]any{"sku": "LOAD-KILL", "name": "Load lamp", "price": "4.50", "stock": stock}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create the product: %d %s", r.Status, r.Body)
	}
	var product struct{ ID string }
	r.Decode(t, &product)

	quantity := map[string]int{}
	var mu sync.Mutex
	place := func(from, to int) {
		var wg sync.WaitGroup
		work := make(chan int)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					q := 1 + i%3
					r := api.Do("POST", "/api/v1/orders", map[string]any{
						"items": []map[string]any{{"product_id": product.ID, "quantity": q}}, "payment_method": "pm_card_visa",
					}, testkit.Bearer(customer), testkit.Header("Idempotency-Key", fmt.Sprintf("load-%d", i)))
					if r.Status != http.StatusAccepted {
						t.Errorf("order %d: %d %s", i, r.Status, r.Body)
						continue
					}
					var o struct{ ID string }
					r.Decode(t, &o)
					mu.Lock()
					quantity[o.ID] = q
					mu.Unlock()
				}
			}()
		}
		for i := from; i < to; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
	}
	place(0, 15)
	t.Logf("kill -9 the product process with %d orders under way", underWay(t, split.DatabaseURL))
	split.Kill(t, "product")
	place(15, 30)
	t.Logf("kill -9 the payment process with %d orders under way", underWay(t, split.DatabaseURL))
	split.Kill(t, "payment")
	place(30, 50)
	split.Restart(t, "product")
	split.Restart(t, "payment")
	if len(quantity) != 50 {
		t.Fatalf("%d orders placed, want 50", len(quantity))
	}

	// A payment cut off in the middle of its provider call is taken up
	// again after its claim expires (about 30s): wait generously.
	waitAllFinal(t, split.DatabaseURL, 5*time.Minute)
	split.CheckInvariants(t)
	sold := 0
	for id, q := range quantity {
		var o struct {
			Status       string `json:"status"`
			PaymentState string `json:"payment_state"`
		}
		api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(customer)).Decode(t, &o)
		if o.Status != "confirmed" || o.PaymentState != "captured" {
			t.Errorf("order %s after the crashes: %s, payment %s; want confirmed and captured", id, o.Status, o.PaymentState)
		}
		sold += q
	}
	var p struct{ Available int }
	api.Do("GET", "/api/v1/products/"+product.ID, nil).Decode(t, &p)
	if p.Available != stock-sold {
		t.Fatalf("available %d after the load, want %d - %d = %d", p.Available, stock, sold, stock-sold)
	}
}

// waitAllFinal waits until no order of the shop is still under way.
func waitAllFinal(t *testing.T, dbURL string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		open := underWay(t, dbURL)
		if open == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orders still under way after %s", open, limit)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// underWay counts the orders whose saga has not ended (-1 when the
// database cannot tell).
func underWay(t *testing.T, dbURL string) int {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	open := -1
	if err := db.QueryRowContext(context.Background(),
		`SELECT count(*) FROM orders.orders WHERE status NOT IN ('confirmed', 'rejected', 'cancelled')`).Scan(&open); err != nil {
		t.Logf("count the orders under way: %v", err)
	}
	return open
}
