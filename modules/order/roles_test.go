package order_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/platform/auth"
)

// TestPlace_NeedsTheCustomerRole: an account stripped of every role (or
// holding only admin) is refused with 403 and nothing is placed; an account
// whose session ended (as suspension ends them) is refused with 401.
func TestPlace_NeedsTheCustomerRole(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, staff := o.Auth.Admin()
	for name, roles := range map[string][]string{"no role": {}, "admin only": {auth.RoleAdmin}} {
		token := o.Auth.Token(auth.Identity{UserID: uuid.NewString(), Username: "stripped", Roles: roles})
		if r, _ := o.place(t, token, 1); r.Status != http.StatusForbidden {
			t.Errorf("%s: place = %d %s, want 403", name, r.Status, r.Body)
		}
	}
	_, suspended := o.Auth.Customer()
	o.Auth.Revoke(suspended)
	if r, _ := o.place(t, suspended, 1); r.Status != http.StatusUnauthorized {
		t.Errorf("ended session: place = %d %s, want 401", r.Status, r.Body)
	}
	if got := o.list(t, staff, nil).Items; len(got) != 0 {
		t.Fatalf("%d orders placed by refused callers, want none", len(got))
	}
	_, customer := o.Auth.Customer()
	if r, _ := o.place(t, customer, 1); r.Status != http.StatusAccepted {
		t.Fatalf("customer: place = %d %s, want 202", r.Status, r.Body)
	}
}
