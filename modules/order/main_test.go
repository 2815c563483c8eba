package order_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/order/events"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/telemetry"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// orderJSON is an order as the API shows it.
type orderJSON struct {
	ID           string  `json:"id"`
	UserID       string  `json:"user_id"`
	Status       string  `json:"status"`
	Total        *string `json:"total"`
	Currency     string  `json:"currency"`
	PaymentState string  `json:"payment_state"`
	CancelReason string  `json:"cancel_reason"`
	Timeline     []struct {
		Step string `json:"step"`
	} `json:"timeline"`
}

func (o orderJSON) hasStep(step string) bool {
	for _, s := range o.Timeline {
		if s.Step == step {
			return true
		}
	}
	return false
}

type pageJSON struct {
	Items      []orderJSON `json:"items"`
	NextCursor *string     `json:"next_cursor"`
}

// orders is the order module alone: the saga's other steps are events the
// test publishes, as the product and payment modules would.
type orders struct {
	*moduletest.Module
	module *order.Module
	api    *testkit.API
	url    string
}

// startOrders builds the order module with cfg (zero: its defaults) on a
// database of its own and serves it; its deadline runner runs. Each of
// before runs before the bus starts (to record more events).
func startOrders(t *testing.T, cfg order.Config, before ...func(*moduletest.Module)) *orders {
	t.Helper()
	files, err := migrations.For(order.Name)
	if err != nil {
		t.Fatal(err)
	}
	m := moduletest.New(t, testkit.ModuleSpec{Name: order.Name, Schema: order.Schema, Migrations: files}, order.RegisterEvents)
	mod := order.New(order.Deps{DB: m.DB, Bus: m.Bus, Log: testkit.Logger(), Metrics: m.Metrics.Registry, Config: cfg})
	moduletest.Record[events.OrderPlaced](m.Events)
	moduletest.Record[events.OrderCancelled](m.Events)
	moduletest.Record[events.PaymentRequested](m.Events)
	for _, f := range before {
		f(m)
	}
	m.Start(t)
	m.Run(t, mod.Run)
	// Requests are server spans, as the shop's stack makes them: a request
	// that sends a traceparent places its order in the sender's trace.
	routes := func(api *gin.RouterGroup) {
		api.Use(telemetry.Gin("modshop-order", nil))
		mod.Routes(api)
	}
	srv := m.Serve(t, routes, order.Definition(cfg).OpenAPI)
	return &orders{Module: m, module: mod, api: srv.API, url: srv.URL}
}

// place places an order of quantity units of a new product, as token,
// and returns the answer.
func (o *orders) place(t *testing.T, token string, quantity int, opts ...testkit.Option) (*testkit.Response, orderJSON) {
	t.Helper()
	body := map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": quantity}}}
	return o.placeBody(t, token, body, opts...)
}

func (o *orders) placeBody(t *testing.T, token string, body map[string]any, opts ...testkit.Option) (*testkit.Response, orderJSON) {
	t.Helper()
	r := o.api.Do("POST", "/api/v1/orders", body, append(opts, testkit.Bearer(token))...)
	var out orderJSON
	if r.Status == http.StatusAccepted {
		r.Decode(t, &out)
	}
	return r, out
}

// placed places an order that must be accepted and returns it.
func (o *orders) placed(t *testing.T, token string) orderJSON {
	t.Helper()
	r, out := o.place(t, token, 1)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place an order: %d %s", r.Status, r.Body)
	}
	return out
}

// get reads an order as token.
func (o *orders) get(t *testing.T, token, id string) orderJSON {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var out orderJSON
	r.Decode(t, &out)
	return out
}

// waitStatus waits until the order has status.
func (o *orders) waitStatus(t *testing.T, token, id, status string) orderJSON {
	t.Helper()
	var got orderJSON
	testkit.Eventually(t, "order "+id+" to be "+status, func() bool {
		got = o.get(t, token, id)
		return got.Status == status
	})
	return got
}

// publish publishes events as the product or payment module would.
func (o *orders) publish(t *testing.T, evs ...bus.Event) {
	t.Helper()
	if err := o.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
}

// reserve answers an order's order.placed as the product module does when
// the stock is there: one line at 10.00.
func (o *orders) reserve(t *testing.T, id string) {
	t.Helper()
	placed := moduletest.WaitFor(t, o.Events, "order.placed of "+id, func(ev events.OrderPlaced) bool { return ev.OrderID == id })
	lines := make([]productevents.ReservedLine, len(placed.Lines))
	for i, l := range placed.Lines {
		lines[i] = productevents.ReservedLine{ProductID: l.ProductID, Name: "Thing", UnitPrice: "10.00", Quantity: l.Quantity}
	}
	o.publish(t, productevents.StockReserved{OrderID: id, Lines: lines, ExpiresAt: time.Now().Add(15 * time.Minute)})
}

// reject answers an order's order.placed as the product module does when
// the stock is short.
func (o *orders) reject(t *testing.T, id string) {
	t.Helper()
	placed := moduletest.WaitFor(t, o.Events, "order.placed of "+id, func(ev events.OrderPlaced) bool { return ev.OrderID == id })
	o.publish(t, productevents.StockRejected{OrderID: id, Short: []productevents.ShortLine{
		{ProductID: placed.Lines[0].ProductID, Requested: placed.Lines[0].Quantity, Available: 0, Reason: "insufficient_stock"}}})
}

// pay answers an order's payment.requested as the payment module does
// when the card is good.
func (o *orders) pay(t *testing.T, id string) {
	t.Helper()
	asked := moduletest.WaitFor(t, o.Events, "payment.requested of "+id, func(ev events.PaymentRequested) bool { return ev.OrderID == id })
	o.publish(t, paymentevents.PaymentSucceeded{OrderID: id, PaymentID: uuid.NewString(), Amount: asked.Amount, CapturedAt: time.Now().UTC()})
}
