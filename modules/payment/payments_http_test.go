package payment_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/testkit"
)

func TestPayments_OnlyTheOwnerAndStaffSeeAnOrdersPayments(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	ownerID, owner := shop.Customer(t)
	_, other := shop.Customer(t)
	_, admin := shop.Admin(t)

	order := charge(t, shop, ownerID, "12.00", "pm_card_visa", "")
	waitOutcome(t, db, "payment.succeeded.v1", order)

	for who, token := range map[string]string{"owner": owner, "admin": admin} {
		r, pays := orderPayments(t, shop, token, order)
		if r.Status != http.StatusOK || len(pays) != 1 || pays[0].OrderID != order || pays[0].Status != "captured" {
			t.Errorf("%s: %d %s, want the order's captured payment", who, r.Status, r.Body)
		}
	}
	// Someone else's payments do not exist for them.
	r, _ := orderPayments(t, shop, other, order)
	if r.Status != http.StatusNotFound {
		t.Errorf("another customer: %d %s, want 404", r.Status, r.Body)
	} else {
		r.Problem(t)
	}
	// An order without payments: 404 for a customer (as someone else's
	// would be), an empty list for staff.
	unknown := uuid.NewString()
	if r, _ := orderPayments(t, shop, owner, unknown); r.Status != http.StatusNotFound {
		t.Errorf("customer, order without payments: %d %s, want 404", r.Status, r.Body)
	}
	if r, pays := orderPayments(t, shop, admin, unknown); r.Status != http.StatusOK || len(pays) != 0 {
		t.Errorf("admin, order without payments: %d %s, want 200 and no items", r.Status, r.Body)
	}
	if r := shop.API.Do("GET", "/api/v1/payments?order_id="+order, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("anonymous: %d %s, want 401", r.Status, r.Body)
	}
}

func TestPayments_BadOrderIDIs422(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	_, token := shop.Customer(t)
	_, admin := shop.Admin(t)
	for _, query := range []string{
		"",
		"?order_id=",
		"?order_id=42",
		"?order_id=" + strings.ToUpper(uuid.NewString()),
		"?order_id=" + uuid.NewString() + "x",
		"?order_id=%00",
		"?order_id=" + strings.Repeat("a", 5000),
	} {
		for who, tok := range map[string]string{"customer": token, "admin": admin} {
			r := shop.API.Do("GET", "/api/v1/payments"+query, nil, testkit.Bearer(tok))
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%s GET /api/v1/payments%.60s: %d %s, want 422", who, query, r.Status, r.Body)
				continue
			}
			p := r.Problem(t)
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["field"] != "order_id" {
				t.Errorf("%s GET /api/v1/payments%.60s: problem %v does not name order_id", who, query, p)
			}
		}
	}
}
