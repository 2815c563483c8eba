package order_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/platform/testkit"
)

// refundedOrderJSON is an order with what refunds and returns show.
type refundedOrderJSON struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	Refunded    string `json:"refunded"`
	RefundState string `json:"refund_state"`
	Refunds     []struct {
		ID     string `json:"id"`
		Amount string `json:"amount"`
		Status string `json:"status"`
		Reason string `json:"reason"`
		Lines  []struct {
			ProductID string `json:"product_id"`
			Quantity  int    `json:"quantity"`
		} `json:"lines"`
	} `json:"refunds"`
	Items []struct {
		ProductID        string `json:"product_id"`
		RefundedQuantity int    `json:"refunded_quantity"`
		ReturnedQuantity int    `json:"returned_quantity"`
	} `json:"items"`
}

// confirmedOrder places an order of quantity units of one product at
// 10.00 as a new customer and has it confirmed; it returns the order id,
// its product and a staff token.
func (o *orders) confirmedOrder(t *testing.T, quantity int) (id, product, staff string) {
	t.Helper()
	_, customer := o.Auth.Customer()
	_, staff = o.Auth.Admin()
	r, placed := o.place(t, customer, quantity)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	o.reserve(t, placed.ID)
	o.pay(t, placed.ID)
	o.waitStatus(t, customer, placed.ID, "confirmed")
	full := o.refunded(t, staff, placed.ID)
	return placed.ID, full.Items[0].ProductID, staff
}

// refunded reads an order's refunds as token.
func (o *orders) refunded(t *testing.T, token, id string) refundedOrderJSON {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var out refundedOrderJSON
	r.Decode(t, &out)
	return out
}

func (o *orders) refund(t *testing.T, token, id, key string, body map[string]any) *testkit.Response {
	t.Helper()
	opts := []testkit.Option{testkit.Bearer(token)}
	if key != "" {
		opts = append(opts, testkit.Header("Idempotency-Key", key))
	}
	return o.api.Do("POST", "/api/v1/orders/"+id+"/refunds", body, opts...)
}

func (o *orders) returnLines(t *testing.T, token, id, key string, body map[string]any) *testkit.Response {
	t.Helper()
	opts := []testkit.Option{testkit.Bearer(token)}
	if key != "" {
		opts = append(opts, testkit.Header("Idempotency-Key", key))
	}
	return o.api.Do("POST", "/api/v1/orders/"+id+"/returns", body, opts...)
}

// busPayloads reads the payloads on topic for the order, as the superuser.
func (o *orders) busPayloads(t *testing.T, topic, id string) []map[string]any {
	t.Helper()
	rows, err := testkit.OpenSQL(t, o.URL).Query(`SELECT payload::text FROM bus."m_`+topic+`" WHERE payload->>'order_id' = $1 ORDER BY "offset"`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw string
		var m map[string]any
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func lines(product string, quantity int) map[string]any {
	return map[string]any{"lines": []map[string]any{{"product_id": product, "quantity": quantity}}, "reason": "damaged"}
}

func goods(product string, quantity int) map[string]any {
	return map[string]any{"lines": []map[string]any{{"product_id": product, "quantity": quantity}}}
}

// paidBack answers a refund request as the payment module does once the
// provider gave the money back.
func (o *orders) paidBack(t *testing.T, id string, ask map[string]any) {
	t.Helper()
	o.publish(t, paymentevents.PaymentRefunded{OrderID: id, PaymentID: uuid.NewString(), RefundID: ask["refund_id"].(string),
		Amount: ask["amount"].(string), RefundedAt: time.Now().UTC()})
}

// TestRefund_ByLineThenTheRestIsRefundedOnce: a line refund asks the
// payment module for the line's worth under a refund id; the order shows
// it requested, then, once payment.refunded names it, partly_refunded with
// the amount (counted once however often the event arrives); refunding
// the rest by amount makes it refunded.
func TestRefund_ByLineThenTheRestIsRefundedOnce(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	id, product, staff := o.confirmedOrder(t, 2)

	if r := o.refund(t, staff, id, "line-"+id, lines(product, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("refund a line: %d %s", r.Status, r.Body)
	}
	got := o.refunded(t, staff, id)
	if got.RefundState != "none" || got.Refunded != "0.00" || len(got.Refunds) != 1 || got.Refunds[0].Status != "requested" ||
		got.Refunds[0].Amount != "10.00" || len(got.Refunds[0].Lines) != 1 || got.Items[0].RefundedQuantity != 1 {
		t.Fatalf("after asking: %+v, want one requested refund of 10.00 for one unit, nothing refunded yet", got)
	}
	asks := o.busPayloads(t, "payment.refund_requested.v1", id)
	if len(asks) != 1 || asks[0]["amount"] != "10.00" || asks[0]["refund_id"] != got.Refunds[0].ID || asks[0]["reason"] != "damaged" {
		t.Fatalf("payment.refund_requested = %v, want one of 10.00 naming refund %s", asks, got.Refunds[0].ID)
	}
	o.paidBack(t, id, asks[0])
	o.paidBack(t, id, asks[0])
	testkit.Eventually(t, "the refund to succeed", func() bool {
		got = o.refunded(t, staff, id)
		return got.RefundState == "partly_refunded"
	})
	if got.Refunded != "10.00" || got.Refunds[0].Status != "succeeded" || got.Status != "confirmed" {
		t.Fatalf("after payment.refunded: %+v, want 10.00 refunded, the order still confirmed", got)
	}

	if r := o.refund(t, staff, id, "rest-"+id, map[string]any{"amount": "10"}); r.Status != http.StatusAccepted {
		t.Fatalf("refund the rest: %d %s", r.Status, r.Body)
	}
	asks = o.busPayloads(t, "payment.refund_requested.v1", id)
	if len(asks) != 2 || asks[1]["amount"] != "10.00" {
		t.Fatalf("payment.refund_requested = %v, want a second of 10.00", asks)
	}
	o.paidBack(t, id, asks[1])
	testkit.Eventually(t, "the order to be refunded", func() bool {
		got = o.refunded(t, staff, id)
		return got.RefundState == "refunded"
	})
	if got.Refunded != "20.00" || len(got.Refunds) != 2 {
		t.Fatalf("refunded order: %+v, want 20.00 back in two refunds", got)
	}
	if r := o.refund(t, staff, id, "more-"+id, map[string]any{"amount": "0.01"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("refund a refunded order: %d %s, want 422", r.Status, r.Body)
	}
}

// TestRefund_BoundsAre422NamingTheFieldAndChangeNothing: amounts past
// what is left, lines past what was bought (or refunded already), lines
// the order lacks, malformed requests and a missing key are refused.
func TestRefund_BoundsAre422NamingTheFieldAndChangeNothing(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	id, product, staff := o.confirmedOrder(t, 2)

	if r := o.refund(t, staff, id, "one-"+id, lines(product, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("refund a line: %d %s", r.Status, r.Body)
	}
	for name, c := range map[string]struct {
		key   string
		body  map[string]any
		field string
	}{
		"amount past what is left":   {"a", map[string]any{"amount": "10.01"}, "amount"},
		"more units than are left":   {"b", lines(product, 2), "lines.quantity"},
		"a product the order lacks":  {"c", lines(uuid.NewString(), 1), "lines.product_id"},
		"lines and an amount":        {"d", map[string]any{"amount": "1.00", "lines": lines(product, 1)["lines"]}, "amount"},
		"neither lines nor amount":   {"e", map[string]any{"reason": "x"}, "lines"},
		"a zero amount":              {"f", map[string]any{"amount": "0.00"}, "amount"},
		"three decimals":             {"g", map[string]any{"amount": "1.005"}, "amount"},
		"a quantity of 0":            {"h", lines(product, 0), "lines.quantity"},
		"no idempotency key":         {"", map[string]any{"amount": "1.00"}, "Idempotency-Key"},
		"a reason of 201 characters": {"i", map[string]any{"amount": "1.00", "reason": strings.Repeat("x", 201)}, "reason"},
	} {
		r := o.refund(t, staff, id, c.key, c.body)
		if r.Status != http.StatusUnprocessableEntity || !names(t, r, c.field) {
			t.Errorf("%s: %d %s, want 422 naming %s", name, r.Status, r.Body, c.field)
		}
	}
	got := o.refunded(t, staff, id)
	if len(got.Refunds) != 1 || got.Items[0].RefundedQuantity != 1 {
		t.Errorf("after refused requests: %+v, want the one refund", got)
	}
	if asks := o.busPayloads(t, "payment.refund_requested.v1", id); len(asks) != 1 {
		t.Errorf("%d refund requests published, want 1", len(asks))
	}
	// What is left can still be refunded, by amount.
	if r := o.refund(t, staff, id, "left-"+id, map[string]any{"amount": "10.00"}); r.Status != http.StatusAccepted {
		t.Errorf("refund what is left: %d %s", r.Status, r.Body)
	}
}

// TestRefund_SameKeyOnceAnotherBodyIs422: a retried request answers the
// order again without a second refund; the key with another body is 422.
func TestRefund_SameKeyOnceAnotherBodyIs422(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	id, product, staff := o.confirmedOrder(t, 3)
	key := "retry-" + id
	for range 2 {
		if r := o.refund(t, staff, id, key, lines(product, 1)); r.Status != http.StatusAccepted {
			t.Fatalf("refund with key %s: %d %s", key, r.Status, r.Body)
		}
	}
	if r := o.refund(t, staff, id, key, lines(product, 2)); r.Status != http.StatusUnprocessableEntity || !names(t, r, "Idempotency-Key") {
		t.Fatalf("the key with another body: %d %s, want 422 naming Idempotency-Key", r.Status, r.Body)
	}
	if got := o.refunded(t, staff, id); len(got.Refunds) != 1 || got.Items[0].RefundedQuantity != 1 {
		t.Fatalf("after a retry: %+v, want one refund of one unit", got)
	}
	if asks := o.busPayloads(t, "payment.refund_requested.v1", id); len(asks) != 1 {
		t.Fatalf("%d refund requests published, want 1", len(asks))
	}
}

// TestRefundAndReturn_OnlyStaffAndOnlyConfirmedOrders: a customer may not
// refund or return (403); an order not confirmed is 409; an unknown order
// 404.
func TestRefundAndReturn_OnlyStaffAndOnlyConfirmedOrders(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, customer := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	pending := o.placed(t, customer)
	product := uuid.NewString()
	if r := o.refund(t, customer, pending.ID, "k", map[string]any{"amount": "1.00"}); r.Status != http.StatusForbidden {
		t.Errorf("a customer refunds: %d %s, want 403", r.Status, r.Body)
	}
	if r := o.returnLines(t, customer, pending.ID, "", goods(product, 1)); r.Status != http.StatusForbidden {
		t.Errorf("a customer returns: %d %s, want 403", r.Status, r.Body)
	}
	if r := o.refund(t, staff, pending.ID, "k", map[string]any{"amount": "1.00"}); r.Status != http.StatusConflict {
		t.Errorf("refund a pending order: %d %s, want 409", r.Status, r.Body)
	}
	if r := o.returnLines(t, staff, pending.ID, "", goods(product, 1)); r.Status != http.StatusConflict {
		t.Errorf("return goods of a pending order: %d %s, want 409", r.Status, r.Body)
	}
	if r := o.refund(t, staff, uuid.NewString(), "k", map[string]any{"amount": "1.00"}); r.Status != http.StatusNotFound {
		t.Errorf("refund an unknown order: %d %s, want 404", r.Status, r.Body)
	}
}

// TestReturn_CountsGoodsBackOncePerKeyWithinWhatWasBought: a return
// publishes order.returned with its lines and refunds nothing; its
// quantities are bounded by what was bought less earlier returns; a
// retried request returns nothing twice.
func TestReturn_CountsGoodsBackOncePerKeyWithinWhatWasBought(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	id, product, staff := o.confirmedOrder(t, 2)
	for range 2 {
		if r := o.returnLines(t, staff, id, "back-"+id, goods(product, 1)); r.Status != http.StatusAccepted {
			t.Fatalf("return one unit: %d %s", r.Status, r.Body)
		}
	}
	if r := o.returnLines(t, staff, id, "", goods(product, 2)); r.Status != http.StatusUnprocessableEntity || !names(t, r, "lines.quantity") {
		t.Fatalf("return more than is left: %d %s, want 422 naming lines.quantity", r.Status, r.Body)
	}
	if r := o.returnLines(t, staff, id, "", map[string]any{"lines": []any{}}); r.Status != http.StatusUnprocessableEntity || !names(t, r, "lines") {
		t.Fatalf("return nothing: %d %s, want 422 naming lines", r.Status, r.Body)
	}
	returned := o.busPayloads(t, "order.returned.v1", id)
	if len(returned) != 1 || returned[0]["return_id"] == "" {
		t.Fatalf("order.returned = %v, want one", returned)
	}
	got := o.refunded(t, staff, id)
	if got.Items[0].ReturnedQuantity != 1 || got.RefundState != "none" || len(got.Refunds) != 0 {
		t.Fatalf("after a return: %+v, want one unit back and nothing refunded", got)
	}
	if r := o.returnLines(t, staff, id, "", goods(product, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("return the other unit: %d %s", r.Status, r.Body)
	}
}

// names reports whether a problem's field errors name field.
func names(t *testing.T, r *testkit.Response, field string) bool {
	t.Helper()
	if r.Status < 400 {
		return false
	}
	errs, _ := r.Problem(t)["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field {
			return true
		}
	}
	return false
}

// TestRefund_ALateChargeRefundedShowsAsARefund: the saga's own refund of a
// charge that came after the order was cancelled is a refund of the order
// too (refunded, refund_state, refunds), counted once.
func TestRefund_ALateChargeRefundedShowsAsARefund(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, customer := o.Auth.Customer()
	placed := o.placed(t, customer)
	o.reserve(t, placed.ID)
	o.waitStatus(t, customer, placed.ID, "awaiting_payment")
	if r := o.api.Do("POST", "/api/v1/orders/"+placed.ID+"/cancel", nil, testkit.Bearer(customer)); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	o.pay(t, placed.ID)
	testkit.Eventually(t, "the late charge to be refunded", func() bool {
		return len(o.busPayloads(t, "payment.refund_requested.v1", placed.ID)) == 1
	})
	refund := paymentevents.PaymentRefunded{OrderID: placed.ID, PaymentID: uuid.NewString(), RefundID: uuid.NewString(),
		Amount: "10.00", RefundedAt: time.Now().UTC()}
	o.publish(t, refund, refund)
	var got refundedOrderJSON
	testkit.Eventually(t, "the refund to show", func() bool {
		got = o.refunded(t, customer, placed.ID)
		return got.RefundState == "refunded"
	})
	if got.Status != "cancelled" || got.Refunded != "10.00" || len(got.Refunds) != 1 || got.Refunds[0].ID != refund.RefundID ||
		got.Refunds[0].Status != "succeeded" {
		t.Fatalf("cancelled order refunded: %+v, want one succeeded refund of 10.00", got)
	}
	if ps := o.get(t, customer, placed.ID).PaymentState; ps != "refunded" {
		t.Errorf("payment state %s, want refunded", ps)
	}
}

// TestRefund_ARefusedRefundFailsAndMayBeAskedForAgain: payment.refund_failed
// (the provider refused) marks the order's refund failed with the reason,
// once however often it arrives; nothing counts as refunded, the line may
// be refunded again and the whole amount is refundable again; the
// timeline says so. A refused refund the order never asked for (a late
// charge's) shows in the timeline alone.
func TestRefund_ARefusedRefundFailsAndMayBeAskedForAgain(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	id, product, staff := o.confirmedOrder(t, 2)
	if r := o.refund(t, staff, id, "line-"+id, lines(product, 1)); r.Status != http.StatusAccepted {
		t.Fatalf("refund a line: %d %s", r.Status, r.Body)
	}
	ask := o.busPayloads(t, "payment.refund_requested.v1", id)[0]
	refused := paymentevents.PaymentRefundFailed{OrderID: id, PaymentID: uuid.NewString(), RefundID: ask["refund_id"].(string),
		Amount: "10.00", Currency: "EUR", Reason: "rejected: the card account is closed", FailedAt: time.Now().UTC()}
	o.publish(t, refused)
	o.publish(t, refused)
	var got refundedOrderJSON
	testkit.Eventually(t, "the refund to fail", func() bool {
		got = o.refunded(t, staff, id)
		// The order's lines and its refunds are read one after the other:
		// wait until both show the failure.
		return len(got.Refunds) == 1 && got.Refunds[0].Status == "failed" && got.Items[0].RefundedQuantity == 0
	})
	if got.RefundState != "none" || got.Refunded != "0.00" || got.Items[0].RefundedQuantity != 0 || got.Status != "confirmed" {
		t.Fatalf("after payment.refund_failed: %+v, want nothing refunded, the line refundable again", got)
	}
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(staff))
	var full struct {
		Refunds []struct {
			FailureReason *string `json:"failure_reason"`
			FailedAt      *string `json:"failed_at"`
		}
		Timeline []struct{ Step, Detail string }
	}
	r.Decode(t, &full)
	if f := full.Refunds[0]; f.FailureReason == nil || *f.FailureReason != refused.Reason || f.FailedAt == nil {
		t.Errorf("failed refund reads %+v, want its reason and time", f)
	}
	var failures []string
	for _, e := range full.Timeline {
		if e.Step == "refund_failed" {
			failures = append(failures, e.Detail)
		}
	}
	if len(failures) != 1 || !strings.Contains(failures[0], "10.00") || !strings.Contains(failures[0], "card account is closed") {
		t.Errorf("timeline refund_failed entries %q, want one naming 10.00 and why", failures)
	}
	if r := o.refund(t, staff, id, "all-"+id, map[string]any{"amount": "20.00"}); r.Status != http.StatusAccepted {
		t.Errorf("refund the whole order after the refusal: %d %s, want 202", r.Status, r.Body)
	}

	late := paymentevents.PaymentRefundFailed{OrderID: id, PaymentID: uuid.NewString(), RefundID: uuid.NewString(),
		Amount: "20.00", Currency: "EUR", Reason: "rejected", FailedAt: time.Now().UTC()}
	o.publish(t, late)
	testkit.Eventually(t, "the late charge's refused refund in the timeline", func() bool {
		r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(staff))
		r.Decode(t, &full)
		n := 0
		for _, e := range full.Timeline {
			if e.Step == "refund_failed" {
				n++
			}
		}
		return n == 2
	})
	if got := o.refunded(t, staff, id); len(got.Refunds) != 2 || got.Refunds[1].Status != "requested" {
		t.Errorf("refunds %+v, want the failed one and the new request, nothing for the late charge", got.Refunds)
	}
}
