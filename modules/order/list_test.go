package order_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/platform/testkit"
)

// list reads one page of GET /api/v1/orders as token.
func (o *orders) list(t *testing.T, token string, params url.Values) pageJSON {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders?"+params.Encode(), nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("list orders %s: %d %s", params.Encode(), r.Status, r.Body)
	}
	var page pageJSON
	r.Decode(t, &page)
	return page
}

func ids(os []orderJSON) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = o.ID
	}
	return out
}

// TestList_CustomersSeeTheirOwnStaffSeeEveryOrderNewestFirst: a customer
// lists only their orders, staff list everyone's, both newest first.
func TestList_CustomersSeeTheirOwnStaffSeeEveryOrderNewestFirst(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, bob := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	var annOrders, all []string
	for i := range 5 {
		who := ann
		if i%2 == 1 {
			who = bob
		}
		id := o.placed(t, who).ID
		all = append([]string{id}, all...)
		if who == ann {
			annOrders = append([]string{id}, annOrders...)
		}
	}

	if got := ids(o.list(t, ann, nil).Items); !slices.Equal(got, annOrders) {
		t.Errorf("ann lists %v, want her orders newest first %v", got, annOrders)
	}
	if got := o.list(t, bob, nil).Items; len(got) != 2 {
		t.Errorf("bob lists %d orders, want his 2", len(got))
	}
	for _, ord := range o.list(t, bob, nil).Items {
		if slices.Contains(annOrders, ord.ID) {
			t.Errorf("bob lists ann's order %s", ord.ID)
		}
	}
	if got := ids(o.list(t, staff, nil).Items); !slices.Equal(got, all) {
		t.Errorf("staff list %v, want every order newest first %v", got, all)
	}
	if r := o.api.Do("GET", "/api/v1/orders", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("anonymous list: %d, want 401", r.Status)
	}
}

// TestList_PagesWalkEveryOrderOnce: pages of a limit follow each other by
// next_cursor, which is null on the last page, and together hold every
// order once, newest first.
func TestList_PagesWalkEveryOrderOnce(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	var want []string
	for range 5 {
		want = append([]string{o.placed(t, ann).ID}, want...)
	}
	for _, who := range []struct{ name, token string }{{"customer", ann}, {"staff", staff}} {
		var walked []string
		var sizes []int
		params := url.Values{"limit": {"2"}}
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatalf("%s: more than 5 pages of 2 for 5 orders", who.name)
			}
			page := o.list(t, who.token, params)
			walked = append(walked, ids(page.Items)...)
			sizes = append(sizes, len(page.Items))
			if page.NextCursor == nil {
				break
			}
			params = url.Values{"limit": {"2"}, "cursor": {*page.NextCursor}}
		}
		if !slices.Equal(walked, want) || !slices.Equal(sizes, []int{2, 2, 1}) {
			t.Errorf("%s walked %v in pages of %v, want %v in pages of [2 2 1]", who.name, walked, sizes, want)
		}
	}
}

// TestList_StatusFilterShowsOnlyOrdersInThatStatus: with the saga moved by
// the events the product and payment modules would publish, ?status= lists
// the orders in that status only, for staff and for their owner.
func TestList_StatusFilterShowsOnlyOrdersInThatStatus(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, ann := o.Auth.Customer()
	_, bob := o.Auth.Customer()
	_, staff := o.Auth.Admin()

	pending := o.placed(t, bob).ID
	awaiting := o.placed(t, ann).ID
	o.reserve(t, awaiting)
	confirmed := o.placed(t, ann).ID
	o.reserve(t, confirmed)
	o.pay(t, confirmed)
	rejected := o.placed(t, ann).ID
	o.reject(t, rejected)
	cancelled := o.placed(t, bob).ID
	if r := o.api.Do("POST", "/api/v1/orders/"+cancelled+"/cancel", nil, testkit.Bearer(bob)); r.Status != http.StatusAccepted {
		t.Fatalf("cancel: %d %s", r.Status, r.Body)
	}
	o.waitStatus(t, staff, awaiting, "awaiting_payment")
	o.waitStatus(t, staff, confirmed, "confirmed")
	o.waitStatus(t, staff, rejected, "rejected")
	o.waitStatus(t, staff, cancelled, "cancelled")

	for status, id := range map[string]string{
		"pending": pending, "awaiting_payment": awaiting, "confirmed": confirmed, "rejected": rejected, "cancelled": cancelled,
	} {
		got := o.list(t, staff, url.Values{"status": {status}}).Items
		if !slices.Equal(ids(got), []string{id}) {
			t.Errorf("staff ?status=%s: %v, want [%s]", status, ids(got), id)
		}
		for _, ord := range got {
			if ord.Status != status {
				t.Errorf("staff ?status=%s lists order %s in status %s", status, ord.ID, ord.Status)
			}
		}
	}
	if got := ids(o.list(t, ann, url.Values{"status": {"confirmed"}}).Items); !slices.Equal(got, []string{confirmed}) {
		t.Errorf("ann ?status=confirmed: %v, want [%s]", got, confirmed)
	}
	if got := o.list(t, ann, url.Values{"status": {"pending"}}).Items; len(got) != 0 {
		t.Errorf("ann ?status=pending: %v, want none (the pending order is bob's)", ids(got))
	}
}

// TestList_BadParametersAreProblemsNamingThem: an unknown status or a
// limit out of range is 422 naming the parameter; a cursor the listing
// did not give out is 400.
func TestList_BadParametersAreProblemsNamingThem(t *testing.T) {
	t.Parallel()
	o := startOrders(t, order.Config{})
	_, staff := o.Auth.Admin()
	o.placed(t, staff)
	cases := []struct {
		query  string
		status int
		field  string
	}{
		{"status=shipped", http.StatusUnprocessableEntity, "status"},
		{"status=PENDING", http.StatusUnprocessableEntity, "status"},
		{"limit=0", http.StatusUnprocessableEntity, "limit"},
		{"limit=101", http.StatusUnprocessableEntity, "limit"},
		{"limit=ten", http.StatusUnprocessableEntity, "limit"},
		{"cursor=not-a-cursor", http.StatusBadRequest, ""},
	}
	for _, c := range cases {
		r := o.api.Do("GET", "/api/v1/orders?"+c.query, nil, testkit.Bearer(staff))
		if r.Status != c.status {
			t.Errorf("?%s: %d %s, want %d", c.query, r.Status, r.Body, c.status)
			continue
		}
		p := r.Problem(t)
		if c.field == "" {
			continue
		}
		errs, _ := p["errors"].([]any)
		named := false
		for _, e := range errs {
			if m, _ := e.(map[string]any); m["field"] == c.field {
				named = true
			}
		}
		if !named {
			t.Errorf("?%s: problem %v does not name %q", c.query, p, c.field)
		}
	}
}
