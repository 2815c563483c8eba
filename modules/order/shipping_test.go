package order_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// shippedJSON is an order's shipping and fulfilment as the API shows them.
type shippedJSON struct {
	ID             string  `json:"id"`
	Status         string  `json:"status"`
	Subtotal       *string `json:"subtotal"`
	Total          *string `json:"total"`
	ShippingMethod struct {
		Code, Label, Price string
	} `json:"shipping_method"`
	ShippingAddress *map[string]string `json:"shipping_address"`
	Fulfilment      struct {
		State          string  `json:"state"`
		Carrier        *string `json:"carrier"`
		TrackingNumber *string `json:"tracking_number"`
		ShippedAt      *string `json:"shipped_at"`
		DeliveredAt    *string `json:"delivered_at"`
	} `json:"fulfilment"`
	Timeline []struct {
		Step   string `json:"step"`
		Detail string `json:"detail"`
	} `json:"timeline"`
}

func (o shippedJSON) steps() []string {
	var out []string
	for _, s := range o.Timeline {
		out = append(out, s.Step)
	}
	return out
}

var shippingConfig = order.Config{ShippingMethods: []order.ShippingMethod{
	{Code: "standard", Label: "Standard delivery", Price: "4.90", NeedsAddress: true},
	{Code: "express", Label: "Express delivery", Price: "9.90", NeedsAddress: true},
}}

func address() map[string]any {
	return map[string]any{"name": "Ann Example", "line1": "Hauptstraße 1", "line2": "", "postal_code": "10115", "city": "Berlin", "country": "DE"}
}

// shippedBody is an order of one new product, shipped by method to addr
// (nil: none sent; method "": none sent).
func shippedBody(method string, addr map[string]any) map[string]any {
	body := map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": 1}}}
	if method != "" {
		body["shipping_method"] = method
	}
	if addr != nil {
		body["shipping_address"] = addr
	}
	return body
}

// getShipped reads an order's shipping and fulfilment as token.
func (o *orders) getShipped(t *testing.T, token, id string) shippedJSON {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var out shippedJSON
	r.Decode(t, &out)
	return out
}

// confirmed places an order (body) as token and takes it through
// reservation (one line at 10.00) and payment to confirmed.
func (o *orders) confirmed(t *testing.T, token string, body map[string]any) string {
	t.Helper()
	r, placed := o.placeBody(t, token, body)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	o.reserve(t, placed.ID)
	o.pay(t, placed.ID)
	o.waitStatus(t, token, placed.ID, "confirmed")
	return placed.ID
}

// published counts the messages of topic about an order on the bus.
func (o *orders) published(t *testing.T, topic, orderID string) int {
	t.Helper()
	var n int
	if err := o.Admin.QueryRow(`SELECT count(*) FROM bus."m_`+topic+`" WHERE payload->>'order_id' = $1`, orderID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestShippingMethods_ArePickupAndTheConfiguredOnes: anyone may list the
// methods, pickup (free, no address) first, with the countries an address
// may name.
func TestShippingMethods_ArePickupAndTheConfiguredOnes(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	r := o.api.Do("GET", "/api/v1/shipping-methods", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list methods: %d %s", r.Status, r.Body)
	}
	var got struct {
		Items []struct {
			Code, Label, Price string
			NeedsAddress       bool `json:"needs_address"`
		}
		Currency  string
		Countries []string
	}
	r.Decode(t, &got)
	if got.Currency != "EUR" {
		t.Errorf("currency %q, want the shop's (EUR by default): every price carries its currency", got.Currency)
	}
	var codes []string
	for _, m := range got.Items {
		codes = append(codes, m.Code+"="+m.Price)
		if m.NeedsAddress != (m.Code != "pickup") {
			t.Errorf("method %s needs_address %v", m.Code, m.NeedsAddress)
		}
	}
	if want := []string{"pickup=0.00", "standard=4.90", "express=9.90"}; !slices.Equal(codes, want) {
		t.Errorf("methods %v, want %v", codes, want)
	}
	if len(got.Countries) != 249 || !slices.Contains(got.Countries, "DE") || !slices.IsSorted(got.Countries) {
		t.Errorf("%d countries, want the 249 ISO 3166-1 codes sorted", len(got.Countries))
	}
}

// TestParseShippingMethods_RefusesWhatIsNotAMethod: the setting is read
// at start; a mistake names the entry and what is wrong.
func TestParseShippingMethods_RefusesWhatIsNotAMethod(t *testing.T) {
	t.Parallel()
	got, err := order.ParseShippingMethods(" standard=Standard delivery:4.90, express=Express: next day:9.90")
	if err != nil || len(got) != 2 || got[1].Label != "Express: next day" || got[1].Price != "9.90" || !got[0].NeedsAddress {
		t.Errorf("parse: %+v, %v", got, err)
	}
	if got, err := order.ParseShippingMethods(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %+v, %v; want pickup alone", got, err)
	}
	for spec, says := range map[string]string{
		"standard:4.90":                          "code=label:price",
		"Standard=Standard:4.90":                 "code",
		"pickup=Pick up:0.00":                    "built in",
		"a=A:1.00,a=B:2.00":                      "twice",
		"a=:1.00":                                "label",
		"a=A:4.9":                                "price",
		"a=A:-1.00":                              "price",
		"a=" + strings.Repeat("x", 41) + ":1.00": "label",
	} {
		if _, err := order.ParseShippingMethods(spec); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want an error about the %s", spec, err, says)
		}
	}
}

// TestPlace_ShippingIsValidatedWithFieldErrors: a bad method or address
// is a 422 naming the field, and nothing is placed.
func TestPlace_ShippingIsValidatedWithFieldErrors(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	with := func(field string, v any) map[string]any {
		a := address()
		if v == nil {
			delete(a, field)
		} else {
			a[field] = v
		}
		return a
	}
	tests := []struct {
		name   string
		body   map[string]any
		field  string
		status int
	}{
		{"unknown method", shippedBody("drone", nil), "shipping_method", 422},
		{"delivery without an address", shippedBody("express", nil), "shipping_address", 422},
		{"pickup with an address", shippedBody("pickup", address()), "shipping_address", 422},
		{"no method (pickup) with an address", shippedBody("", address()), "shipping_address", 422},
		{"no name", shippedBody("standard", with("name", nil)), "shipping_address.name", 422},
		{"blank line1", shippedBody("standard", with("line1", "   ")), "shipping_address.line1", 422},
		{"no city", shippedBody("standard", with("city", "")), "shipping_address.city", 422},
		{"no country", shippedBody("standard", with("country", nil)), "shipping_address.country", 422},
		{"lower-case country", shippedBody("standard", with("country", "de")), "shipping_address.country", 422},
		{"country not in the list", shippedBody("standard", with("country", "XX")), "shipping_address.country", 422},
		{"long name", shippedBody("standard", with("name", strings.Repeat("a", 101))), "shipping_address.name", 422},
		{"long city", shippedBody("standard", with("city", strings.Repeat("é", 61))), "shipping_address.city", 422},
		{"line break in line1", shippedBody("standard", with("line1", "Hauptstraße 1\nEvil")), "shipping_address.line1", 422},
		{"bell in line2", shippedBody("standard", with("line2", "a\x07b")), "shipping_address.line2", 422},
		{"NUL in line2 (refused for any field)", shippedBody("standard", with("line2", "a\x00b")), "", 400},
		{"postal code with symbols", shippedBody("standard", with("postal_code", "10<115")), "shipping_address.postal_code", 422},
		{"unknown address field", shippedBody("standard", with("state", "BE")), "", 400},
		{"address not an object", shippedBody("standard", nil), "", 400},
	}
	tests[len(tests)-1].body["shipping_address"] = "Berlin"
	for _, tc := range tests {
		r, _ := o.placeBody(t, ann, tc.body)
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
			continue
		}
		if tc.field != "" && !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %s, want an error on %s", tc.name, r.Body, tc.field)
		}
	}
	if got := o.list(t, ann, nil).Items; len(got) != 0 {
		t.Errorf("refused requests placed %d orders", len(got))
	}
	// What is valid: line2 and the postal code may be empty (not every
	// country has postal codes); parts are trimmed.
	a := address()
	a["postal_code"], a["name"] = "", "  Ann Example  "
	r, placed := o.placeBody(t, ann, shippedBody("standard", a))
	if r.Status != http.StatusAccepted {
		t.Fatalf("a good address: %d %s", r.Status, r.Body)
	}
	if got := o.getShipped(t, ann, placed.ID); got.ShippingAddress == nil || (*got.ShippingAddress)["name"] != "Ann Example" {
		t.Errorf("stored address %v, want the name trimmed", got.ShippingAddress)
	}
}

// TestPlace_TheTotalChargedIncludesShipping: the method's label and price
// are stored with the order; once the lines are priced the subtotal is
// their sum, the total adds shipping, and the payment asks for the total.
// An order without a method is collected in store, at 0.00.
func TestPlace_TheTotalChargedIncludesShipping(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()

	r, placed := o.placeBody(t, ann, shippedBody("express", address()))
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	got := o.getShipped(t, ann, placed.ID)
	if got.ShippingMethod.Code != "express" || got.ShippingMethod.Label != "Express delivery" || got.ShippingMethod.Price != "9.90" ||
		got.ShippingAddress == nil || (*got.ShippingAddress)["city"] != "Berlin" || (*got.ShippingAddress)["country"] != "DE" ||
		got.Fulfilment.State != "unfulfilled" || got.Total != nil || got.Subtotal != nil {
		t.Errorf("placed: %+v", got)
	}
	o.reserve(t, placed.ID)
	asked := moduletest.WaitFor(t, o.Events, "payment.requested of "+placed.ID, func(ev events.PaymentRequested) bool { return ev.OrderID == placed.ID })
	if asked.Amount != "19.90" {
		t.Errorf("payment asked for %s, want 19.90 (10.00 and 9.90 shipping)", asked.Amount)
	}
	got = o.getShipped(t, ann, placed.ID)
	if got.Subtotal == nil || *got.Subtotal != "10.00" || got.Total == nil || *got.Total != "19.90" {
		t.Errorf("subtotal %v total %v, want 10.00 and 19.90", got.Subtotal, got.Total)
	}

	pick := o.placed(t, ann)
	o.reserve(t, pick.ID)
	asked = moduletest.WaitFor(t, o.Events, "payment.requested of "+pick.ID, func(ev events.PaymentRequested) bool { return ev.OrderID == pick.ID })
	got = o.getShipped(t, ann, pick.ID)
	if asked.Amount != "10.00" || got.ShippingMethod.Code != "pickup" || got.ShippingMethod.Price != "0.00" || got.ShippingAddress != nil ||
		got.Total == nil || *got.Total != "10.00" {
		t.Errorf("pickup: charged %s, order %+v; want 10.00, pickup without an address", asked.Amount, got)
	}
}

// TestPlace_TheIdempotencyHashIncludesShipping: a key reused with another
// method or address is another request; naming pickup is the request
// without a method.
func TestPlace_TheIdempotencyHashIncludesShipping(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	body := shippedBody("standard", address())
	key := testkit.Header("Idempotency-Key", "ship-"+uuid.NewString())
	r, first := o.placeBody(t, ann, body, key)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	if r, again := o.placeBody(t, ann, body, key); r.Status != http.StatusAccepted || again.ID != first.ID {
		t.Errorf("same key, same body: %d %s, want order %s", r.Status, again.ID, first.ID)
	}
	express := shippedBody("express", address())
	express["items"] = body["items"]
	moved := shippedBody("standard", address())
	moved["items"] = body["items"]
	moved["shipping_address"].(map[string]any)["city"] = "Potsdam"
	for name, b := range map[string]map[string]any{"another method": express, "another address": moved} {
		if r, _ := o.placeBody(t, ann, b, key); r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "Idempotency-Key") {
			t.Errorf("same key, %s: %d %s, want 422 on Idempotency-Key", name, r.Status, r.Body)
		}
	}

	plain := shippedBody("", nil)
	pkey := testkit.Header("Idempotency-Key", "pick-"+uuid.NewString())
	_, p1 := o.placeBody(t, ann, plain, pkey)
	plain["shipping_method"] = "pickup"
	if r, p2 := o.placeBody(t, ann, plain, pkey); r.Status != http.StatusAccepted || p2.ID != p1.ID {
		t.Errorf("the same request naming pickup: %d %s, want order %s", r.Status, r.Body, p1.ID)
	}
}

// TestFulfilment_StaffShipAndDeliverConfirmedOrders: only staff, only
// confirmed orders; shipped needs a carrier and tracking number; the same
// call again answers the same state and publishes nothing more, another
// one is a conflict; delivery follows shipping; each step is on the
// timeline and its event published once.
func TestFulfilment_StaffShipAndDeliverConfirmedOrders(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	ship := func(token, id string, body any) *testkit.Response {
		return o.api.Do("POST", "/api/v1/orders/"+id+"/shipment", body, testkit.Bearer(token))
	}
	deliver := func(token, id string) *testkit.Response {
		return o.api.Do("POST", "/api/v1/orders/"+id+"/delivery", nil, testkit.Bearer(token))
	}
	dhl := map[string]any{"carrier": "DHL", "tracking_number": "00340434161234567890"}

	r, pending := o.placeBody(t, ann, shippedBody("standard", address()))
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	if r := ship(staff, pending.ID, dhl); r.Status != http.StatusConflict {
		t.Errorf("ship a pending order: %d %s, want 409", r.Status, r.Body)
	}
	if r := deliver(staff, pending.ID); r.Status != http.StatusConflict {
		t.Errorf("deliver a pending order: %d %s, want 409", r.Status, r.Body)
	}

	id := o.confirmed(t, ann, shippedBody("standard", address()))
	if r := ship(ann, id, dhl); r.Status != http.StatusForbidden {
		t.Errorf("a customer ships: %d, want 403", r.Status)
	}
	if r := deliver(ann, id); r.Status != http.StatusForbidden {
		t.Errorf("a customer delivers: %d, want 403", r.Status)
	}
	if r := ship(staff, uuid.NewString(), dhl); r.Status != http.StatusNotFound {
		t.Errorf("ship an unknown order: %d, want 404", r.Status)
	}
	for name, body := range map[string]map[string]any{
		"no carrier":          {"carrier": " ", "tracking_number": "123"},
		"no tracking number":  {"carrier": "DHL", "tracking_number": ""},
		"tracking with a tab": {"carrier": "DHL", "tracking_number": "12\t3"},
		"long carrier":        {"carrier": strings.Repeat("c", 61), "tracking_number": "123"},
	} {
		if r := ship(staff, id, body); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("ship with %s: %d %s, want 422", name, r.Status, r.Body)
		}
	}
	if r := deliver(staff, id); r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "ship it") {
		t.Errorf("deliver before shipping: %d %s, want 409", r.Status, r.Body)
	}
	if got := o.getShipped(t, ann, id); got.Fulfilment.State != "unfulfilled" || got.Fulfilment.Carrier != nil {
		t.Errorf("refused calls changed the order: %+v", got.Fulfilment)
	}

	r = ship(staff, id, dhl)
	if r.Status != http.StatusOK {
		t.Fatalf("ship: %d %s", r.Status, r.Body)
	}
	var shipped shippedJSON
	r.Decode(t, &shipped)
	if f := shipped.Fulfilment; f.State != "shipped" || f.Carrier == nil || *f.Carrier != "DHL" || f.TrackingNumber == nil ||
		*f.TrackingNumber != "00340434161234567890" || f.ShippedAt == nil || f.DeliveredAt != nil || shipped.Status != "confirmed" {
		t.Errorf("shipped: %s %+v", shipped.Status, f)
	}
	r = ship(staff, id, dhl)
	var again shippedJSON
	r.Decode(t, &again)
	if r.Status != http.StatusOK || again.Fulfilment.State != "shipped" || *again.Fulfilment.ShippedAt != *shipped.Fulfilment.ShippedAt {
		t.Errorf("the same shipment again: %d %+v, want 200 and the same shipment", r.Status, again.Fulfilment)
	}
	if r := ship(staff, id, map[string]any{"carrier": "DHL", "tracking_number": "999"}); r.Status != http.StatusConflict {
		t.Errorf("another shipment: %d %s, want 409", r.Status, r.Body)
	}

	r = deliver(staff, id)
	var delivered shippedJSON
	r.Decode(t, &delivered)
	if r.Status != http.StatusOK || delivered.Fulfilment.State != "delivered" || delivered.Fulfilment.DeliveredAt == nil ||
		delivered.Fulfilment.TrackingNumber == nil {
		t.Errorf("deliver: %d %+v", r.Status, delivered.Fulfilment)
	}
	if r := deliver(staff, id); r.Status != http.StatusOK {
		t.Errorf("deliver again: %d %s, want 200", r.Status, r.Body)
	}
	if r := ship(staff, id, dhl); r.Status != http.StatusOK {
		t.Errorf("the same shipment after delivery: %d %s, want 200 as it is", r.Status, r.Body)
	}
	got := o.getShipped(t, ann, id)
	steps := got.steps()
	if got.Fulfilment.State != "delivered" || !slices.Contains(steps, "shipped") || !slices.Contains(steps, "delivered") ||
		steps[len(steps)-1] != "delivered" {
		t.Errorf("the customer sees %s, timeline %v", got.Fulfilment.State, steps)
	}
	if n := o.published(t, events.OrderShippedV1, id); n != 1 {
		t.Errorf("order.shipped published %d times, want once", n)
	}
	if n := o.published(t, events.OrderDeliveredV1, id); n != 1 {
		t.Errorf("order.delivered published %d times, want once", n)
	}
	// Fulfilment is not cancellation: a confirmed order is final for the
	// customer, shipped or not.
	if r := o.api.Do("POST", "/api/v1/orders/"+id+"/cancel", nil, testkit.Bearer(ann)); r.Status != http.StatusConflict {
		t.Errorf("customer cancels a confirmed order: %d, want 409", r.Status)
	}
}

// TestFulfilment_PickupIsCollectedNotShipped: an order collected in store
// goes from unfulfilled to delivered; it has nothing to ship.
func TestFulfilment_PickupIsCollectedNotShipped(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	id := o.confirmed(t, ann, shippedBody("", nil))
	if r := o.api.Do("POST", "/api/v1/orders/"+id+"/shipment", map[string]any{"carrier": "DHL", "tracking_number": "1"}, testkit.Bearer(staff)); r.Status != http.StatusConflict {
		t.Errorf("ship a pickup order: %d %s, want 409", r.Status, r.Body)
	}
	if r := o.api.Do("POST", "/api/v1/orders/"+id+"/delivery", nil, testkit.Bearer(staff)); r.Status != http.StatusOK {
		t.Fatalf("collect: %d %s", r.Status, r.Body)
	}
	got := o.getShipped(t, ann, id)
	if got.Fulfilment.State != "delivered" || got.Fulfilment.Carrier != nil || !slices.Contains(got.steps(), "delivered") {
		t.Errorf("collected: %+v, timeline %v", got.Fulfilment, got.steps())
	}
}

// TestList_ToShipIsConfirmedUnfulfilledOldestFirst: what staff ship next,
// oldest first, paged.
func TestList_ToShipIsConfirmedUnfulfilledOldestFirst(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	first := o.confirmed(t, ann, shippedBody("standard", address()))
	o.placed(t, ann) // pending
	shipped := o.confirmed(t, ann, shippedBody("express", address()))
	if r := o.api.Do("POST", "/api/v1/orders/"+shipped+"/shipment", map[string]any{"carrier": "UPS", "tracking_number": "1Z999"}, testkit.Bearer(staff)); r.Status != http.StatusOK {
		t.Fatalf("ship: %d %s", r.Status, r.Body)
	}
	pickup := o.confirmed(t, ann, shippedBody("", nil))
	last := o.confirmed(t, ann, shippedBody("standard", address()))

	want := []string{first, pickup, last}
	if got := ids(o.list(t, staff, url.Values{"fulfilment": {"to_ship"}}).Items); !slices.Equal(got, want) {
		t.Errorf("to ship %v, want %v (oldest first)", got, want)
	}
	var paged []string
	params := url.Values{"fulfilment": {"to_ship"}, "limit": {"2"}}
	for {
		page := o.list(t, staff, params)
		paged = append(paged, ids(page.Items)...)
		if page.NextCursor == nil {
			break
		}
		params.Set("cursor", *page.NextCursor)
	}
	if !slices.Equal(paged, want) {
		t.Errorf("to ship in pages of 2: %v, want %v", paged, want)
	}
	if r := o.api.Do("GET", "/api/v1/orders?fulfilment=shipped", nil, testkit.Bearer(staff)); r.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(r.Body), `"field":"fulfilment"`) {
		t.Errorf("unknown fulfilment filter: %d %s, want 422 naming fulfilment", r.Status, r.Body)
	}
}

// TestFulfilment_AnOrderRefundedInFullIsNeitherShippedNorCollected: once
// every cent of a confirmed, unfulfilled order came back, there is nothing
// to send: shipping it (or marking a pickup collected) is a conflict that
// changes nothing, and no order.shipped is published. A partly refunded
// order still ships.
func TestFulfilment_AnOrderRefundedInFullIsNeitherShippedNorCollected(t *testing.T) {
	t.Parallel()
	o := startOrders(t, shippingConfig)
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	dhl := map[string]any{"carrier": "DHL", "tracking_number": "00340434161234567890"}
	refundAll := func(id string) {
		t.Helper()
		r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(staff))
		var got struct{ Total string }
		r.Decode(t, &got)
		if r := o.refund(t, staff, id, "all-"+id, map[string]any{"amount": got.Total}); r.Status != http.StatusAccepted {
			t.Fatalf("refund %s in full: %d %s", got.Total, r.Status, r.Body)
		}
		o.paidBack(t, id, o.busPayloads(t, "payment.refund_requested.v1", id)[0])
		testkit.Eventually(t, "the order to be refunded", func() bool { return o.refunded(t, staff, id).RefundState == "refunded" })
	}

	shipped := o.confirmed(t, ann, shippedBody("standard", address()))
	refundAll(shipped)
	r := o.api.Do("POST", "/api/v1/orders/"+shipped+"/shipment", dhl, testkit.Bearer(staff))
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "refunded") {
		t.Errorf("ship an order refunded in full: %d %s, want 409 saying it is refunded", r.Status, r.Body)
	}
	if got := o.getShipped(t, staff, shipped); got.Fulfilment.State != "unfulfilled" || o.published(t, "order.shipped.v1", shipped) != 0 {
		t.Errorf("after the refused shipment: fulfilment %q, %d order.shipped, want unfulfilled and none",
			got.Fulfilment.State, o.published(t, "order.shipped.v1", shipped))
	}
	if got := ids(o.list(t, staff, url.Values{"fulfilment": {"to_ship"}}).Items); slices.Contains(got, shipped) {
		t.Errorf("to ship %v lists the order refunded in full", got)
	}

	collected := o.confirmed(t, ann, shippedBody("", nil))
	refundAll(collected)
	if r := o.api.Do("POST", "/api/v1/orders/"+collected+"/delivery", nil, testkit.Bearer(staff)); r.Status != http.StatusConflict {
		t.Errorf("mark a pickup refunded in full collected: %d %s, want 409", r.Status, r.Body)
	}

	partly := o.confirmed(t, ann, shippedBody("standard", address()))
	if r := o.refund(t, staff, partly, "part-"+partly, map[string]any{"amount": "1.00"}); r.Status != http.StatusAccepted {
		t.Fatalf("refund 1.00: %d %s", r.Status, r.Body)
	}
	o.paidBack(t, partly, o.busPayloads(t, "payment.refund_requested.v1", partly)[0])
	testkit.Eventually(t, "the order to be partly refunded", func() bool { return o.refunded(t, staff, partly).RefundState == "partly_refunded" })
	if r := o.api.Do("POST", "/api/v1/orders/"+partly+"/shipment", dhl, testkit.Bearer(staff)); r.Status != http.StatusOK {
		t.Errorf("ship a partly refunded order: %d %s, want 200", r.Status, r.Body)
	}
}
