package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/testkit"
)

// TestShutdown_LogsNoErrorsForItsOwnCancellation serves a shop as `modshop
// serve` does, keeps orders flowing through the saga, and stops it the way
// SIGTERM does (the serve command's context ends) while the bus is busy:
// the shop's own cancellation is not an error, so from the stop on its log
// has no ERROR line. A few rounds, because what is in flight at the moment
// of the stop differs each time.
func TestShutdown_LogsNoErrorsForItsOwnCancellation(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		logged := serveUnderLoadAndStop(t)
		for _, line := range strings.Split(logged, "\n") {
			if strings.Contains(line, "level=ERROR") {
				t.Errorf("round %d: the shutdown logged an error: %s", round, line)
			}
		}
	}
}

// serveUnderLoadAndStop runs `modshop serve` on a new database, places
// orders from a few clients until some have gone through, stops the shop
// while they go on, and returns what it logged from the stop on.
func serveUnderLoadAndStop(t *testing.T) string {
	t.Helper()
	addr := freeAddr(t)
	env := map[string]string{
		"MODSHOP_DATABASE_URL": testkit.NewDatabase(t),
		"MODSHOP_HTTP_ADDR":    addr,
		"MODSHOP_SEED_DEMO":    "true",
		"MODSHOP_DB_MAX_CONNS": "4",
		// The test card that answers at once keeps every saga short.
		"MODSHOP_PAYMENT_TEST_DELAY": "10ms",
	}
	var logged syncBuffer
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Env{
			Args: []string{"serve"}, Stdout: io.Discard, Stderr: &logged,
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		})
	}()
	base := "http://" + addr
	waitReady(t, base, done)

	token, products := shopper(t, base)
	var placed atomic.Int64
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	for i := range 4 {
		load.Add(1)
		go func() {
			defer load.Done()
			for n := i; loadCtx.Err() == nil; n++ {
				body := fmt.Sprintf(`{"items":[{"product_id":%q,"quantity":1}],"payment_method":"pm_card_visa"}`, products[n%len(products)])
				if status, _ := post(loadCtx, base+"/api/v1/orders", token, body); status == http.StatusAccepted {
					placed.Add(1)
				}
			}
		}()
	}
	for placed.Load() < 40 {
		select {
		case err := <-done:
			t.Fatalf("modshop exited under load: %v\n%s", err, logged.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	before := len(logged.String())
	stop() // what SIGTERM does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after the stop\n%s", err, logged.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not return after the stop")
	}
	stopLoad()
	load.Wait()
	return logged.String()[before:]
}

// shopper registers a customer and returns its session token and the ids
// of the catalog's first products.
func shopper(t *testing.T, base string) (token string, products []string) {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("shopper%d", time.Now().UnixNano())
	if status, body := post(ctx, base+"/api/v1/users", "", fmt.Sprintf(`{"username":%q,"email":"%s@example.com","password":"correct horse battery"}`, name, name)); status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	status, body := post(ctx, base+"/api/v1/sessions", "", fmt.Sprintf(`{"login":%q,"password":"correct horse battery"}`, name))
	var sess struct{ Token string }
	if status != http.StatusCreated || json.Unmarshal(body, &sess) != nil {
		t.Fatalf("log in: %d %s", status, body)
	}
	resp, err := http.Get(base + "/api/v1/products?limit=20")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []struct{ ID string } }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || len(page.Items) == 0 {
		t.Fatalf("list products: %v %+v", err, page)
	}
	for _, p := range page.Items {
		products = append(products, p.ID)
	}
	return sess.Token, products
}

// post sends a JSON body and returns the status and body (0 when the
// request failed).
func post(ctx context.Context, url, token, body string) (int, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
