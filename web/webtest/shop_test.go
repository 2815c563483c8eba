package webtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const password = "correct horse battery"

// Products the tests add to the demo catalog, by SKU.
var testProducts = []struct {
	sku, name, price string
	stock            int
}{
	{"GW-1", "Glowworm brass lantern", "24.00", 8},
	{"GW-2", "Glowworm paper lantern", "9.50", 6},
	{"HX-1", "Haunted desk lamp", "13.00", 5},
}

// world is a running shop with the demo catalog, a few test products, a
// staff account, one browser, and a tab for the shopper and for staff.
type world struct {
	shop     *apptest.Shop
	admin    string            // an admin's API token, to set up and check
	products map[string]string // SKU -> id
	shopper  *tab
	staff    *tab
	browser  *browser

	shopperName, staffName string
	confirmedOrder         string // placed with pm_card_visa
	declinedOrder          string // placed with pm_card_chargeDeclined
}

func newWorld(t *testing.T, b *browser) *world {
	t.Helper()
	shop := apptest.Start(t, func(c *app.Config) {
		c.SeedDemo = true
		c.BusMaxAttempts = 3                // dead letters within a second
		c.StockTimeout = 5 * time.Minute    // the order behind a dead letter waits for its replay
		c.PaymentTimeout = 5 * time.Minute  // nothing times out under a slow race detector
		c.ReservationTTL = 10 * time.Minute // nor does a reservation
		c.LoginPerClient = 1000             // every tab logs in from 127.0.0.1
		c.TraceURLTemplate = traceURLTemplate
	})
	_, admin := shop.Admin(t)
	w := &world{shop: shop, admin: admin, products: map[string]string{}, browser: b,
		shopperName: apptest.Unique("shopper"), staffName: apptest.Unique("staffer")}

	w.api(t, "POST", "/api/v1/categories", map[string]any{"slug": "lighting", "name": "Lighting"}, http.StatusCreated, nil)
	for _, p := range testProducts {
		var out struct{ ID string }
		w.api(t, "POST", "/api/v1/products", map[string]any{
			"sku": p.sku, "name": p.name, "price": p.price, "stock": p.stock, "categories": []string{"lighting"},
			"description": "A test product: " + p.name + ".",
		}, http.StatusCreated, &out)
		w.products[p.sku] = out.ID
	}
	if _, err := shop.CreateUser(context.Background(), w.staffName, w.staffName+"@example.com", password, true); err != nil {
		t.Fatal(err)
	}
	w.shopper = b.newTab(t, "the shopper", shop.URL)
	w.staff = b.newTab(t, "staff", shop.URL)
	return w
}

// api calls the shop as the admin, checking the status (and the OpenAPI
// document, as every testkit request does).
func (w *world) api(t *testing.T, method, path string, body any, want int, out any, opts ...testkit.Option) {
	t.Helper()
	r := w.shop.API.Do(method, path, body, append([]testkit.Option{testkit.Bearer(w.admin)}, opts...)...)
	if r.Status != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	if out != nil {
		r.Decode(t, out)
	}
}

// TestShopInTheBrowser walks through the shop as a shopper and as staff in
// headless Chromium, on a real shop (PostgreSQL, bus, saga).
func TestShopInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	w := newWorld(t, b)
	if !t.Run("shopper registers, searches, orders two products with pm_card_visa and sees it confirmed live", w.shopperOrdersAndSeesConfirmed) {
		return // the rest needs the shopper's account
	}
	t.Run("a declined card cancels the order and the storefront shows the stock back", w.declinedCardCancelsAndStockReturns)
	t.Run("my orders lists both orders with their status", w.myOrders)
	t.Run("catalog filters by category and pages back and forth", w.catalogFiltersAndPages)
	t.Run("staff create, edit and restock products; the storefront shows the new stock", w.staffManageProducts)
	t.Run("staff list orders by status with their timelines", w.staffFollowOrders)
	t.Run("staff inspect, replay and discard dead letters on the bus page", w.staffHandleDeadLetters)
	t.Run("a customer who opens a staff page is told they may not; then logs out", w.customerKeptOutOfStaffPages)
	w.shop.CheckInvariants(t)
}

func (w *world) shopperOrdersAndSeesConfirmed(t *testing.T) {
	s := w.shopper.as(t)
	s.open("/")
	s.visible("#products li")
	if n := len(s.texts("#products .card-title")); n != 12 {
		t.Errorf("the storefront shows %d products, want a page of 12", n)
	}
	s.shot("storefront")

	// Register; first with a password the server refuses, whose problem
	// shows next to the password field.
	s.click(`#site-nav a[href="/register"]`)
	s.visible("#register-form")
	s.typeInto("#register-username", w.shopperName)
	s.typeInto("#register-email", w.shopperName+"@example.com")
	s.typeInto("#register-password", "short")
	s.expectFailure("/api/v1/users", http.StatusUnprocessableEntity)
	s.click("#register-submit")
	s.visible("#register-password-error")
	if got := s.text("#register-password-error"); !strings.Contains(got, "Password must be at least 8 characters") {
		t.Errorf("password error shown = %q", got)
	}
	if got := s.attr("#register-password", "aria-invalid"); got != "true" {
		t.Errorf("the refused password field is not marked invalid (aria-invalid=%q)", got)
	}
	s.typeInto("#register-password", password+"\n") // Enter submits
	s.waitFor("the shopper to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(w.shopperName)))
	if p := s.path(); p != "/" {
		t.Errorf("after registering the shopper is at %s, want the storefront", p)
	}

	// Search, once the storefront has drawn its products: typing into the
	// form it draws before that is lost when the page draws it again.
	s.waitFor("the storefront's products", `!document.getElementById("main").hasAttribute("aria-busy") && document.querySelector("#products .card-title") !== null`)
	s.typeInto("#search-q", "glowworm\n")
	s.waitFor("the search results", `location.search === "?q=glowworm" && !document.getElementById("main").hasAttribute("aria-busy")`)
	names := s.texts("#products .card-title")
	slices.Sort(names)
	if !slices.Equal(names, []string{"Glowworm brass lantern", "Glowworm paper lantern"}) {
		t.Fatalf("search for glowworm shows %q", names)
	}

	// Two products into the cart: one from the results, one from its page.
	brass, paper := w.products["GW-1"], w.products["GW-2"]
	s.click(fmt.Sprintf(`#products li[data-product-id=%q] button.add`, brass))
	s.waitFor("the cart to count 1", `document.getElementById("cart-count").textContent === "1"`)
	s.click(fmt.Sprintf(`#products li[data-product-id=%q] .card-title a`, paper))
	s.visible("#add-form")
	if got := s.text("#product-name"); got != "Glowworm paper lantern" {
		t.Errorf("product page shows %q", got)
	}
	if got := s.attr("#product-available", "data-available"); got != "6" {
		t.Errorf("product page shows %s available, want 6", got)
	}
	s.shot("product")
	s.typeInto("#add-quantity", "2")
	s.click("#add-to-cart")
	s.waitFor("the cart to count 3", `document.getElementById("cart-count").textContent === "3"`)
	if got := s.text("#in-cart"); !strings.Contains(got, "In your cart: 2") {
		t.Errorf("product page says %q about the cart", got)
	}

	s.click(`#site-nav a[href="/cart"]`)
	s.visible("#cart-lines")
	if n := len(s.texts("#cart-lines tbody tr")); n != 2 {
		t.Errorf("cart shows %d lines, want 2", n)
	}
	if got := s.text("#cart-subtotal"); !showsMoney(got, "43.00", euro) {
		t.Errorf("cart subtotal = %q, want €43.00 (24.00 + 2 × 9.50)", got)
	}

	// Checkout: the test cards are offered, each explained.
	s.click("#checkout-link")
	s.visible("#checkout-form")
	options := eval[[]string](s, `[...document.querySelectorAll("#payment-method option")].map((o) => o.value)`)
	if !slices.Contains(options, "pm_card_visa") || !slices.Contains(options, "pm_card_chargeDeclined") {
		t.Errorf("payment methods offered: %q", options)
	}
	s.choose("#payment-method", "pm_card_chargeDeclined")
	if got := s.text("#payment-method-hint"); !strings.Contains(got, "declines") {
		t.Errorf("explanation of pm_card_chargeDeclined = %q", got)
	}
	s.choose("#payment-method", "pm_card_visa")
	if got := s.text("#payment-method-hint"); !strings.Contains(got, "approved") {
		t.Errorf("explanation of pm_card_visa = %q", got)
	}
	s.shot("checkout")

	// Hold the bus so the order page surely shows it pending first; then
	// let the saga run and watch the page change by itself.
	release := holdBus(t, w.shop.DatabaseURL)
	eval[bool](s, `window.sameDocument = true`)
	s.click("#place-order")
	s.waitFor("the order page", `location.pathname.startsWith("/orders/") && document.getElementById("order-status") !== null`)
	if got := s.attr("#order-status", "data-status"); got != "pending" {
		t.Errorf("the new order shows %q while the bus is held, want pending", got)
	}
	if got := s.text("#order-live"); !strings.Contains(got, "Updating live") {
		t.Errorf("the pending order page says %q, want that it updates live", got)
	}
	release()
	s.waitFor("the order to show confirmed", `document.querySelector("#order-status[data-status=confirmed]") !== null`)
	if !eval[bool](s, `window.sameDocument === true`) {
		t.Error("the page was reloaded; the status should change by itself")
	}
	if got := s.text("#order-status"); got != "Confirmed" {
		t.Errorf("status shown = %q", got)
	}
	steps := eval[[]string](s, `[...document.querySelectorAll("#order-timeline li")].map((li) => li.dataset.step)`)
	for _, want := range []string{"placed", "stock_reserved", "payment_requested", "payment_succeeded"} {
		if !slices.Contains(steps, want) {
			t.Errorf("timeline %q lacks %s", steps, want)
		}
	}
	if got := s.text("#order-total"); !showsMoney(got, "43.00", euro) {
		t.Errorf("order total = %q, want €43.00", got)
	}
	s.waitFor("the page to stop following the final order", `document.getElementById("order-live").textContent.startsWith("Final")`)
	if got := s.text("#cart-count"); got != "0" {
		t.Errorf("after ordering the cart counts %s", got)
	}
	w.confirmedOrder = strings.TrimPrefix(s.path(), "/orders/")
	s.shot("order")
}

func (w *world) declinedCardCancelsAndStockReturns(t *testing.T) {
	s := w.shopper.as(t)
	brass := w.products["GW-1"]
	s.open("/products/" + brass)
	before := s.attr("#product-available", "data-available")
	if before != "7" {
		t.Errorf("brass lantern shows %s available after one was sold, want 7", before)
	}
	s.typeInto("#add-quantity", "3")
	s.click("#add-to-cart")
	s.waitFor("the cart to count 3", `document.getElementById("cart-count").textContent === "3"`)
	s.click(`#site-nav a[href="/cart"]`)
	s.click("#checkout-link")
	s.choose("#payment-method", "pm_card_chargeDeclined")
	s.click("#place-order")
	s.waitFor("the order to show cancelled", `document.querySelector("#order-status[data-status=cancelled]") !== null`)
	if got := s.text("#order-explain"); !strings.Contains(got, "declined") || !strings.Contains(got, "Nothing was charged") {
		t.Errorf("the cancelled order explains %q", got)
	}
	s.visible("#order-payments")
	if got := s.text("#order-payments"); !strings.Contains(got, "Failed") || !strings.Contains(got, "declined") {
		t.Errorf("payment shown = %q", got)
	}
	w.declinedOrder = strings.TrimPrefix(s.path(), "/orders/")

	// The product module releases the reservation on order.cancelled; the
	// storefront shows the stock back (looked at again as a person would).
	deadline := time.Now().Add(waitTimeout)
	for {
		s.open("/products/" + brass)
		got := s.attr("#product-available", "data-available")
		if got == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("brass lantern shows %s available after the declined order, want %s again", got, before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := s.text("#product-available"); got != "7 in stock" {
		t.Errorf("stock shown = %q", got)
	}
}

func (w *world) myOrders(t *testing.T) {
	s := w.shopper.as(t)
	s.click(`#site-nav a[href="/orders"]`)
	s.visible("#orders")
	got := map[string]string{}
	for _, id := range []string{w.confirmedOrder, w.declinedOrder} {
		got[id] = s.attr(fmt.Sprintf(`#orders li[data-order-id=%q]`, id), "data-status")
	}
	if got[w.confirmedOrder] != "confirmed" || got[w.declinedOrder] != "cancelled" {
		t.Errorf("my orders shows statuses %v; want the first confirmed and the second cancelled", got)
	}
	if n := len(s.texts("#orders > li")); n != 2 {
		t.Errorf("my orders lists %d orders, want 2", n)
	}
}

func (w *world) catalogFiltersAndPages(t *testing.T) {
	s := w.shopper.as(t)
	s.open("/")
	first := s.texts("#products .card-title")
	s.click("#next-page")
	s.waitFor("page 2", `document.getElementById("results-status")?.textContent.includes("page 2")`)
	second := s.texts("#products .card-title")
	if len(second) == 0 || slices.ContainsFunc(second, func(n string) bool { return slices.Contains(first, n) }) {
		t.Errorf("page 2 %q repeats page 1 %q", second, first)
	}
	s.click("#prev-page")
	s.waitFor("page 1", `document.getElementById("results-status")?.textContent.includes("page 1")`)
	if again := s.texts("#products .card-title"); !slices.Equal(again, first) {
		t.Errorf("back on page 1: %q, was %q", again, first)
	}

	s.choose("#search-category", "lighting")
	s.waitFor("the lighting category", `location.search === "?category=lighting" && !document.getElementById("main").hasAttribute("aria-busy")`)
	names := s.texts("#products .card-title")
	slices.Sort(names)
	if !slices.Equal(names, []string{"Glowworm brass lantern", "Glowworm paper lantern", "Haunted desk lamp"}) {
		t.Errorf("lighting shows %q", names)
	}
	if got := s.text("h1"); got != "Lighting" {
		t.Errorf("heading of the category = %q", got)
	}

	s.open("/?q=unobtainium")
	if got := s.text("#results-status"); got != "No products match “unobtainium”." {
		t.Errorf("an empty search says %q", got)
	}
}

func (w *world) staffManageProducts(t *testing.T) {
	s := w.staff.as(t)
	s.open("/login")
	s.typeInto("#login-login", w.staffName)
	s.typeInto("#login-password", "not the password")
	s.expectFailure("/api/v1/sessions", http.StatusUnauthorized)
	s.click("#login-submit")
	s.visible("#login-error")
	if got := s.text("#login-error"); !strings.Contains(got, "The login or password is wrong") {
		t.Errorf("a wrong password is answered with %q next to the button", got)
	}
	s.typeInto("#login-password", password+"\n")
	s.waitFor("staff to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(w.staffName)))
	s.click(`#site-nav a[href="/staff"]`)
	s.click(`.staff-nav a[href="/staff/products"]`)
	s.visible("#staff-products")

	// Create, first with a price the server refuses.
	s.click("#new-product")
	s.visible("#product-form")
	s.typeInto("#product-sku", "GW-7")
	s.typeInto("#product-name", "Glowworm tea light")
	s.typeInto("#product-description", "A small candle for a lantern.")
	s.typeInto("#product-price", "4,50")
	s.typeInto("#product-stock", "20")
	s.click("#product-category-lighting")
	s.expectFailure("/api/v1/products", http.StatusUnprocessableEntity)
	s.click("#product-submit")
	s.visible("#product-price-error")
	if got := s.text("#product-price-error"); !strings.Contains(got, "Price must be a decimal amount") {
		t.Errorf("price error shown = %q", got)
	}
	s.typeInto("#product-price", "4.50")
	s.click("#product-submit")
	s.waitFor("the new product's page", `/^\/staff\/products\/[0-9a-f-]{36}$/.test(location.pathname) && document.getElementById("stock-available") !== null`)
	teaLight := strings.TrimPrefix(s.path(), "/staff/products/")
	if got := s.text("#stock-available"); got != "20" {
		t.Errorf("new product has %s available, want 20", got)
	}

	// Edit its price.
	s.typeInto("#product-price", "4.75")
	s.click("#product-submit")
	s.waitFor("the change to be saved", `document.getElementById("toast").textContent.startsWith("Saved")`)

	// Restock from the list.
	s.open("/staff/products?q=glowworm")
	row := `#staff-products tr[data-sku="GW-1"]`
	if got := s.text(row + " .available"); got != "7" {
		t.Errorf("staff list shows %s available for GW-1, want 7", got)
	}
	s.typeInto("#restock-GW-1", "5")
	s.click(row + " form.restock button")
	s.waitFor("the restocked figures", fmt.Sprintf(`document.querySelector(%s)?.textContent === "12"`, q(row+" .available")))
	if got := s.text(row + " .on-hand"); got != "12" {
		t.Errorf("on hand after restocking 5 = %s, want 12", got)
	}

	// The storefront shows it all.
	c := w.shopper.as(t)
	c.open("/products/" + w.products["GW-1"])
	if got := c.attr("#product-available", "data-available"); got != "12" {
		t.Errorf("storefront shows %s available after restocking, want 12", got)
	}
	c.open("/?q=glowworm")
	card := fmt.Sprintf(`#products li[data-product-id=%q]`, teaLight)
	c.visible(card)
	if got := c.text(card + " .price"); !showsMoney(got, "4.75", euro) {
		t.Errorf("storefront shows the new product at %q, want €4.75", got)
	}
}

// traceURLTemplate is the shop's MODSHOP_TRACE_URL_TEMPLATE.
const traceURLTemplate = "http://tracing.example/trace/{trace_id}"

// tracedOrder makes sure an order keeps a trace context, as one placed in
// a trace does (the shop here exports no traces, so its requests start
// none), and returns its trace id.
func (w *world) tracedOrder(t *testing.T, id string) string {
	t.Helper()
	db, err := sql.Open("pgx", w.shop.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tp string
	err = db.QueryRow(`UPDATE orders.orders SET traceparent = coalesce(traceparent, $2) WHERE id = $1 RETURNING traceparent`,
		id, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").Scan(&tp)
	if err != nil {
		t.Fatalf("the trace context of order %s: %v", id, err)
	}
	return strings.Split(tp, "-")[1]
}

func (w *world) staffFollowOrders(t *testing.T) {
	traceID := w.tracedOrder(t, w.confirmedOrder)
	s := w.staff.as(t)
	s.click(`.staff-nav a[href="/staff/orders"]`)
	s.visible("#staff-orders")
	s.choose("#order-status-filter", "confirmed")
	s.waitFor("confirmed orders", `location.search === "?status=confirmed" && !document.getElementById("main").hasAttribute("aria-busy")`)
	statuses := eval[[]string](s, `[...document.querySelectorAll("#staff-orders > li")].map((li) => li.dataset.status)`)
	if len(statuses) == 0 || slices.ContainsFunc(statuses, func(st string) bool { return st != "confirmed" }) {
		t.Errorf("filtered by confirmed, the list shows %q", statuses)
	}
	card := fmt.Sprintf(`#staff-orders li[data-order-id=%q]`, w.confirmedOrder)
	s.click(card + " details summary")
	s.visible(card + ` li[data-step="payment_succeeded"]`)
	// The order's trace id links to the tracing UI, in a new tab.
	link := card + ` .order-trace a.trace-link`
	s.visible(link)
	if got, want := eval[[]string](s, `(() => { const a = document.querySelector(`+strconv.Quote(link)+`); return [a.href, a.rel, a.target, a.textContent]; })()`),
		[]string{strings.ReplaceAll(traceURLTemplate, "{trace_id}", traceID), "noopener noreferrer", "_blank", "trace " + traceID}; !slices.Equal(got, want) {
		t.Errorf("the order's trace link: href, rel, target, text %q, want %q", got, want)
	}
	s.shot("staff-orders")

	s.choose("#order-status-filter", "cancelled")
	s.waitFor("cancelled orders", `location.search === "?status=cancelled" && !document.getElementById("main").hasAttribute("aria-busy")`)
	if ids := eval[[]string](s, `[...document.querySelectorAll("#staff-orders > li")].map((li) => li.dataset.orderId)`); !slices.Equal(ids, []string{w.declinedOrder}) {
		t.Errorf("cancelled orders listed: %q, want the declined one", ids)
	}
}

// staffHandleDeadLetters makes two dead letters through real code paths: an
// order whose stock.reserved step fails because the database refuses it (an
// outage, simulated with a CHECK constraint and then lifted), and a poison
// message (stock.reserved for an order nobody placed). Staff inspect and
// replay the first, and try to replay and then discard the second.
func (w *world) staffHandleDeadLetters(t *testing.T) {
	db, err := sql.Open("pgx", w.shop.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(query string) {
		t.Helper()
		if _, err := db.Exec(query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	// On the price stock.reserved writes (the name is written at placement already, from the order module's copy).
	exec(`ALTER TABLE orders.order_items ADD CONSTRAINT webtest_outage CHECK (unit_price IS DISTINCT FROM 13.00) NOT VALID`)
	lifted := false
	lift := func() {
		if !lifted {
			lifted = true
			exec(`ALTER TABLE orders.order_items DROP CONSTRAINT webtest_outage`)
		}
	}
	defer lift()

	_, customer := w.shop.Customer(t)
	var placed struct{ ID string }
	w.api(t, "POST", "/api/v1/orders", map[string]any{
		"items": []map[string]any{{"product_id": w.products["HX-1"], "quantity": 1}}, "payment_method": "pm_card_visa",
	}, http.StatusAccepted, &placed, testkit.Bearer(customer))
	ghost := uuid.NewString()
	if err := w.shop.Publish(context.Background(), productevents.StockReserved{OrderID: ghost, ExpiresAt: time.Now().Add(time.Hour),
		Lines: []productevents.ReservedLine{{ProductID: w.products["GW-2"], Name: "Glowworm paper lantern", UnitPrice: "9.50", Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	// Which dead letter is which, by the order in its payload.
	var poison, outage string
	deadline := time.Now().Add(waitTimeout)
	for {
		var list struct {
			Items []struct {
				ID      int64
				Payload struct {
					OrderID string `json:"order_id"`
				}
			}
		}
		w.api(t, "GET", "/api/v1/admin/dead-letters", nil, http.StatusOK, &list)
		if len(list.Items) == 2 {
			for _, d := range list.Items {
				switch d.Payload.OrderID {
				case ghost:
					poison = fmt.Sprintf("#dead-letter-%d", d.ID)
				case placed.ID:
					outage = fmt.Sprintf("#dead-letter-%d", d.ID)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after %s, want 2", len(list.Items), waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if poison == "" || outage == "" {
		t.Fatalf("the dead letters are not the poison message and the order's: poison %q, outage %q", poison, outage)
	}
	lift() // the outage is over; a replay can succeed now

	// A consumer group no process has run for 30 days (a handler since
	// renamed): shown inactive, since it no longer holds back pruning.
	exec(`INSERT INTO bus."o_order.placed.v1" (consumer_group, offset_acked, last_processed_transaction_id) VALUES ('retired.handler', 0, '0')`)
	exec(`INSERT INTO bus.consumer_groups (topic, consumer_group, last_seen) VALUES ('order.placed.v1', 'retired.handler', now() - interval '30 days')`)
	defer exec(`DELETE FROM bus."o_order.placed.v1" WHERE consumer_group = 'retired.handler'`) // its lag would keep the shop from settling
	defer exec(`DELETE FROM bus.consumer_groups WHERE consumer_group = 'retired.handler'`)
	// A consumer group whose position came from another cluster's dump
	// (beyond every transaction id of this one): marked, since it reads
	// nothing new until its position is reset.
	exec(`INSERT INTO bus."o_order.placed.v1" (consumer_group, offset_acked, last_processed_transaction_id) VALUES ('restored.handler', 7, '1000000000000')`)
	defer exec(`DELETE FROM bus.consumer_groups WHERE consumer_group = 'restored.handler'`)
	defer exec(`DELETE FROM bus."o_order.placed.v1" WHERE consumer_group = 'restored.handler'`)

	// A consumer group retrying a transient failure, as a process records
	// it while the database blinks: shown in a section of its own, not
	// among the dead letters.
	exec(`UPDATE bus.consumer_groups SET retrying_since = now() - interval '2 minutes', last_error = 'ERROR: could not serialize access (SQLSTATE 40001)', retries = 12
	       WHERE consumer_group = 'payment.charge'`)
	defer exec(`UPDATE bus.consumer_groups SET retrying_since = NULL, last_error = NULL, retries = 0 WHERE consumer_group = 'payment.charge'`)

	s := w.staff.as(t)
	s.click(`.staff-nav a[href="/staff/bus"]`)
	s.visible("#bus-consumers")
	blinking := `#retrying-groups li.retrying[data-handler="payment.charge"]`
	s.visible(blinking)
	if got := s.text(blinking); !strings.Contains(got, "Retrying since") || !strings.Contains(got, "12 transient failures") || !strings.Contains(got, "SQLSTATE 40001") {
		t.Errorf("the retrying group shown as %q, want since when, 12 transient failures and the last error", got)
	}
	if n := len(s.texts("#retrying-groups li.retrying")); n != 1 {
		t.Errorf("%d groups shown retrying, want 1", n)
	}
	retired := `#bus-consumers tr[data-handler="retired.handler"]`
	if got, state := s.attr(retired, "data-active"), s.text(retired+" .state"); got != "false" || !strings.HasPrefix(state, "inactive last ran") {
		t.Errorf("the retired group shown as active=%q, state %q; want inactive, with when it last ran", got, state)
	}
	restored := `#bus-consumers tr[data-handler="restored.handler"]`
	if got, state := s.attr(restored, "data-position-ahead"), s.text(restored+" .state"); got != "true" || state != "position ahead" {
		t.Errorf("the restored group shown with position ahead %q, state %q; want marked", got, state)
	}
	if got := s.text(`#bus-consumers tr[data-handler="order.on_stock_reserved"] .state`); got != "active" {
		t.Errorf("a running group's state shown as %q, want active", got)
	}
	if n := len(s.texts("#dead-letters li.dead-letter")); n != 2 {
		t.Fatalf("bus page shows %d dead letters, want 2", n)
	}
	handlerRow := `#bus-consumers tr[data-handler="order.on_stock_reserved"]`
	if got := s.text(handlerRow + " .dead"); got != "2" {
		t.Errorf("dead letters shown for order.on_stock_reserved = %q, want 2", got)
	}
	if got := s.text(handlerRow + " .lag"); got != "0" {
		t.Errorf("lag shown for order.on_stock_reserved = %q, want 0 (the messages behind flowed)", got)
	}
	s.shot("bus")

	// The poison message fails again on replay: the page says so next to
	// it; then staff discard it (the button asks once more).
	s.expectFailure("/replay", http.StatusConflict)
	s.click(poison + " .replay-button")
	s.visible(poison + " .action-error")
	if got := s.text(poison + " .action-error"); !strings.Contains(got, "failed again") || !strings.Contains(got, ghost) {
		t.Errorf("failed replay shown as %q", got)
	}
	s.click(poison + " .discard-button")
	if got := s.text(poison + " .discard-button"); got != "Really discard?" {
		t.Errorf("discard asks %q", got)
	}
	s.click(poison + " .discard-button")
	s.gone(poison)

	// The outage's letter: inspect, then replay; the order goes on.
	s.click(outage + " .inspect-button")
	s.visible(outage + " .inspect .payload")
	if got := s.text(outage + " .inspect .payload"); !strings.Contains(got, placed.ID) {
		t.Errorf("inspected payload %q lacks the order id %s", got, placed.ID)
	}
	s.click(outage + " .replay-button")
	s.gone(outage)
	s.visible("#no-dead-letters")
	if got := s.text(handlerRow + " .dead"); got != "0" {
		t.Errorf("after replay and discard the page shows %q dead letters for the handler, want 0", got)
	}

	s.open("/orders/" + placed.ID)
	s.waitFor("the replayed order to be confirmed", `document.querySelector("#order-status[data-status=confirmed]") !== null`)

	s.open("/staff/bus")
	s.choose("#dead-letter-state", "all")
	s.waitFor("every dead letter", `location.search === "?state=all" && document.querySelectorAll("#dead-letters li.dead-letter").length === 2`)
	got := eval[map[string]string](s, `Object.fromEntries([...document.querySelectorAll("#dead-letters li.dead-letter")].map((li) => ["#" + li.id, li.dataset.resolution]))`)
	if got[poison] != "discarded" || got[outage] != "replayed" {
		t.Errorf("resolutions shown: %v; want %s discarded and %s replayed", got, poison, outage)
	}
}

func (w *world) customerKeptOutOfStaffPages(t *testing.T) {
	s := w.shopper.as(t)
	for _, path := range []string{"/staff", "/staff/bus", "/staff/products", "/staff/products/new", "/staff/orders"} {
		s.open(path)
		s.visible("#staff-only")
		if got := s.text("#staff-only"); !strings.Contains(got, "you may not open the staff pages") {
			t.Errorf("%s tells the customer %q", path, got)
		}
		if n := len(s.texts(".staff-nav")); n != 0 {
			t.Errorf("%s shows the staff navigation to a customer", path)
		}
	}
	if n := len(s.texts(`#site-nav a[href="/staff"]`)); n != 0 {
		t.Error("the header offers a customer the staff pages")
	}

	// Logging out ends the session: the header and the pages follow.
	s.click("#logout")
	s.visible(`#site-nav a[href="/login"]`)
	s.open("/orders")
	s.visible("#login-needed")

	v := w.browser.newTab(t, "a visitor", w.shop.URL)
	v.open("/staff/bus")
	v.visible("#staff-only")
	if got := v.text("#staff-only"); !strings.Contains(got, "Log in with a staff account") {
		t.Errorf("an anonymous visitor is told %q", got)
	}
}

// holdBus opens a transaction that holds a transaction id: watermill-sql
// delivers no message written after it began until it ends (it reads only
// rows older than every open transaction). It returns the release.
func holdBus(t *testing.T, databaseURL string) (release func()) {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var xid string
	if err := tx.QueryRow(`SELECT pg_current_xact_id()::text`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback()
			_ = db.Close()
		})
	}
	t.Cleanup(release)
	return release
}
