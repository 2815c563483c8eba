package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// page serves an empty page: a front end of its own origin, whose script
// the test runs in the browser.
func page(t *testing.T, title string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html lang=en><title>%s</title><h1>%s</h1>", title, title)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fetchResult is what a fetch made from a page returns to the test.
type fetchResult struct {
	Status   int    `json:"status"`
	Body     string `json:"body"`
	Location string `json:"location"`
	Error    string `json:"error"` // the fetch failed: the browser did not let the page read the answer
}

// TestCORS_AStorefrontOnAnotherOriginUsesTheAPI: Chromium, on a page of
// an origin the operator listed (another port of the same host), logs in
// to the shop with fetch, reads the account with the session cookie,
// places an order with a bearer token and an Idempotency-Key (a
// preflighted request) and reads its Location, and cancels it. A page of
// an unlisted origin, in the same browser with the same cookie, can read
// nothing and its cancel, the very same request, is refused.
func TestCORS_AStorefrontOnAnotherOriginUsesTheAPI(t *testing.T) {
	b := startBrowser(t)
	storefront, stranger := page(t, "storefront"), page(t, "stranger")
	shop := apptest.Start(t, func(c *app.Config) {
		c.CORSOrigins = storefront.URL
		// The order waits for its payment (it can be cancelled); the
		// provider call must be allowed to last longer than the delay.
		c.PaymentTestDelay = 9 * time.Minute
		c.PaymentProviderTimeout = 10 * time.Minute
		c.PaymentTimeout = 20 * time.Minute
		c.StockTimeout = 10 * time.Minute
	})
	_, admin := shop.Admin(t)
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "CORS-1", "name": "Cross-origin lamp", "price": "5.00", "stock": 3},
		testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create a product: %d %s", r.Status, r.Body)
	}
	var product struct{ ID string }
	r.Decode(t, &product)
	name := apptest.Unique("storefront")
	if _, err := shop.CreateUser(context.Background(), name, name+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}

	// One browser context: the pages share the cookie jar, as two tabs do.
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // the tab, on the context that owns it
		t.Fatalf("open a tab: %v", err)
	}
	open := func(url string) {
		t.Helper()
		octx, ocancel := context.WithTimeout(ctx, waitTimeout)
		defer ocancel()
		if err := chromedp.Do(octx, chromedp.Navigate(url)); err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
	}
	// call runs fetch(shop.URL+path, init) in the page and returns what the
	// page could read of the answer.
	call := func(path, init string) fetchResult {
		t.Helper()
		js := fmt.Sprintf(`(async () => {
			try {
				const r = await fetch(%q + %q, %s);
				return JSON.stringify({status: r.status, body: await r.text(), location: r.headers.get("Location") || ""});
			} catch (e) {
				return JSON.stringify({error: String(e)});
			}
		})()`, shop.URL, path, init)
		ectx, ecancel := context.WithTimeout(ctx, waitTimeout)
		defer ecancel()
		raw, err := chromedp.Run(ectx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("fetch %s from the page: %v", path, err)
		}
		var out fetchResult
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("fetch %s: %v: %s", path, err, raw)
		}
		return out
	}
	orderStatus := func(id string) string {
		t.Helper()
		r := shop.API.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(admin))
		var o struct{ Status string }
		r.Decode(t, &o)
		return o.Status
	}

	open(storefront.URL)
	login := call("/api/v1/sessions", fmt.Sprintf(`{method: "POST", credentials: "include",
		headers: {"Content-Type": "application/json"}, body: JSON.stringify({login: %q, password: %q})}`, name, password))
	if login.Status != http.StatusCreated {
		t.Fatalf("log-in from the storefront: %+v", login)
	}
	var session struct{ Token string }
	if err := json.Unmarshal([]byte(login.Body), &session); err != nil || session.Token == "" {
		t.Fatalf("the log-in's body: %v %s", err, login.Body)
	}
	me := call("/api/v1/users/me", `{credentials: "include"}`) // the cookie alone
	if me.Status != http.StatusOK || !json.Valid([]byte(me.Body)) {
		t.Fatalf("the storefront reads the account with the session cookie: %+v", me)
	}
	placed := call("/api/v1/orders", fmt.Sprintf(`{method: "POST",
		headers: {"Content-Type": "application/json", "Authorization": "Bearer " + %q, "Idempotency-Key": "storefront-1"},
		body: JSON.stringify({items: [{product_id: %q, quantity: 1}], payment_method: "pm_card_delayed"})}`, session.Token, product.ID))
	var order struct{ ID string }
	if placed.Status != http.StatusAccepted || json.Unmarshal([]byte(placed.Body), &order) != nil || placed.Location != "/api/v1/orders/"+order.ID {
		t.Fatalf("the storefront places an order with a bearer token and reads Location: %+v", placed)
	}

	// An unlisted origin: it cannot read the account, and the cancel it
	// sends without a preflight (a "simple" POST, with the cookie) is
	// refused by the shop, not merely hidden from the page.
	open(stranger.URL)
	if r := call("/api/v1/users/me", `{credentials: "include"}`); r.Error == "" {
		t.Errorf("an unlisted origin read the account: %+v", r)
	}
	call("/api/v1/orders/"+order.ID+"/cancel", `{method: "POST", credentials: "include", mode: "no-cors"}`)
	if got := orderStatus(order.ID); got == "cancelled" {
		t.Fatal("an unlisted origin's page cancelled the order with the customer's cookie")
	}

	open(storefront.URL)
	cancelled := call("/api/v1/orders/"+order.ID+"/cancel", `{method: "POST", credentials: "include"}`)
	if cancelled.Status != http.StatusAccepted {
		t.Fatalf("the storefront cancels the order with the cookie: %+v", cancelled)
	}
	if got := orderStatus(order.ID); got != "cancelled" {
		t.Errorf("after the storefront's cancel the order is %s", got)
	}
}
