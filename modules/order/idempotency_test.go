package order_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/platform/testkit"
)

// placedMessages counts the order.placed messages on the bus for id.
func (o *orders) placedMessages(t *testing.T, id string) int64 {
	t.Helper()
	return testkit.QueryInt(t, testkit.OpenSQL(t, o.URL), `SELECT count(*) FROM bus."m_order.placed.v1" WHERE payload->>'order_id' = $1`, id)
}

// TestPlace_SameKeySameBodyIsTheSameOrder: a retried request (same
// Idempotency-Key, same body) answers the order the first one made; one
// order exists and one order.placed was published.
func TestPlace_SameKeySameBodyIsTheSameOrder(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	body := map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": 2}}}
	key := testkit.Header("Idempotency-Key", "retry-"+uuid.NewString())

	r1, first := o.placeBody(t, ann, body, key)
	r2, again := o.placeBody(t, ann, body, key)
	if r1.Status != http.StatusAccepted || r2.Status != http.StatusAccepted {
		t.Fatalf("place twice with one key: %d %s, then %d %s; want 202 both", r1.Status, r1.Body, r2.Status, r2.Body)
	}
	if again.ID != first.ID {
		t.Fatalf("the retry made order %s, want the first one, %s", again.ID, first.ID)
	}
	if got := o.list(t, staff, nil).Items; len(got) != 1 {
		t.Errorf("%d orders after a retried request, want 1", len(got))
	}
	if n := o.placedMessages(t, first.ID); n != 1 {
		t.Errorf("%d order.placed messages for the order, want 1", n)
	}
}

// TestPlace_SameKeyAnotherBodyIs422AndChangesNothing: a key used again
// with another body is refused (422 naming Idempotency-Key, as the API
// documents), and the first order stays the only one.
func TestPlace_SameKeyAnotherBodyIs422AndChangesNothing(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	key := testkit.Header("Idempotency-Key", "conflict-"+uuid.NewString())
	product := uuid.NewString()
	first := map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": product, "quantity": 1}}}
	r, placed := o.placeBody(t, ann, first, key)
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	for name, other := range map[string]map[string]any{
		"another quantity":       {"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": product, "quantity": 2}}},
		"another product":        {"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": 1}}},
		"another payment method": {"payment_method": "pm_card_declined", "items": []map[string]any{{"product_id": product, "quantity": 1}}},
	} {
		r, _ := o.placeBody(t, ann, other, key)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s with a used key: %d %s, want 422", name, r.Status, r.Body)
			continue
		}
		p := r.Problem(t)
		errs, _ := p["errors"].([]any)
		if len(errs) != 1 || errs[0].(map[string]any)["field"] != "Idempotency-Key" {
			t.Errorf("%s with a used key: problem %v, want one error naming Idempotency-Key", name, p)
		}
	}
	if got := ids(o.list(t, staff, nil).Items); len(got) != 1 || got[0] != placed.ID {
		t.Errorf("orders after the refused requests: %v, want only %s", got, placed.ID)
	}
}

// TestPlace_KeysArePerCustomer: two customers using one key make two
// orders.
func TestPlace_KeysArePerCustomer(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, bob := o.Auth.Customer()
	key := testkit.Header("Idempotency-Key", "shared-"+uuid.NewString())
	body := map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": 1}}}
	ra, a := o.placeBody(t, ann, body, key)
	rb, b := o.placeBody(t, bob, body, key)
	if ra.Status != http.StatusAccepted || rb.Status != http.StatusAccepted || a.ID == b.ID {
		t.Fatalf("one key, two customers: %d %s / %d %s; want two orders", ra.Status, a.ID, rb.Status, b.ID)
	}
}

// TestPlace_RacingRetriesMakeOneOrder: requests with one key and body sent
// at once all answer the one order.
func TestPlace_RacingRetriesMakeOneOrder(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	body, err := json.Marshal(map[string]any{"payment_method": "pm_card_visa", "items": []map[string]any{{"product_id": uuid.NewString(), "quantity": 1}}})
	if err != nil {
		t.Fatal(err)
	}
	key := "race-" + uuid.NewString()
	const racers = 6
	type answer struct {
		status int
		id     string
		err    error
	}
	answers := make([]answer, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			req, err := http.NewRequest("POST", o.url+"/api/v1/orders", bytes.NewReader(body))
			if err != nil {
				answers[i].err = err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+ann)
			req.Header.Set("Idempotency-Key", key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answers[i].err = err
				return
			}
			defer resp.Body.Close()
			var out orderJSON
			answers[i].status, answers[i].err = resp.StatusCode, json.NewDecoder(resp.Body).Decode(&out)
			answers[i].id = out.ID
		})
	}
	wg.Wait()
	for i, a := range answers {
		if a.err != nil || a.status != http.StatusAccepted || a.id != answers[0].id {
			t.Errorf("racer %d: %d %q (%v), want 202 with the one order %q", i, a.status, a.id, a.err, answers[0].id)
		}
	}
	if got := o.list(t, staff, nil).Items; len(got) != 1 {
		t.Errorf("%d orders after %d racing requests with one key, want 1", len(got), racers)
	}
}
