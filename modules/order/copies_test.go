package order_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/order"
	productevents "github.com/modshop/modshop/modules/product/events"
	userevents "github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
	"github.com/modshop/modshop/platform/testkit/moduletest"
)

// namedOrder is an order with what the copies add to it.
type namedOrder struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Customer struct {
		ID          string  `json:"id"`
		Username    *string `json:"username"`
		DisplayName *string `json:"display_name"`
	} `json:"customer"`
	Items []struct {
		ProductID string  `json:"product_id"`
		Name      *string `json:"name"`
	} `json:"items"`
}

func (n namedOrder) name() string {
	if len(n.Items) != 1 || n.Items[0].Name == nil {
		return ""
	}
	return *n.Items[0].Name
}

type copyJSON struct {
	Copy      string     `json:"copy"`
	Rows      int        `json:"rows"`
	FilledAt  *time.Time `json:"filled_at"`
	RequestID *string    `json:"request_id"`
}

// startCopies is the order module recording the backfill requests it
// publishes.
func startCopies(t *testing.T) *orders {
	t.Helper()
	return startOrders(t, order.Config{}, func(m *moduletest.Module) { moduletest.Record[bus.BackfillRequested](m.Events) })
}

// placeOf places an order of one unit of product as token.
func (o *orders) placeOf(t *testing.T, token, product string) namedOrder {
	t.Helper()
	r := o.api.Do("POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa",
		"items": []map[string]any{{"product_id": product, "quantity": 1}}}, testkit.Bearer(token))
	if r.Status != http.StatusAccepted {
		t.Fatalf("place an order of %s: %d %s", product, r.Status, r.Body)
	}
	var out namedOrder
	r.Decode(t, &out)
	return out
}

func (o *orders) getNamed(t *testing.T, token, id string) namedOrder {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token))
	if r.Status != http.StatusOK {
		t.Fatalf("get order %s: %d %s", id, r.Status, r.Body)
	}
	var out namedOrder
	r.Decode(t, &out)
	return out
}

// copies reads GET /api/v1/orders/copies as staff, by copy.
func (o *orders) copies(t *testing.T, staff string) map[string]copyJSON {
	t.Helper()
	r := o.api.Do("GET", "/api/v1/orders/copies", nil, testkit.Bearer(staff))
	if r.Status != http.StatusOK {
		t.Fatalf("copies: %d %s", r.Status, r.Body)
	}
	var page struct{ Items []copyJSON }
	r.Decode(t, &page)
	out := map[string]copyJSON{}
	for _, c := range page.Items {
		out[c.Copy] = c
	}
	return out
}

// nameIs waits until product's line in a new order placed as token is named want.
func (o *orders) nameIs(t *testing.T, token, product, want string) {
	t.Helper()
	var got string
	testkit.Eventually(t, "a new order of "+product+" named "+want, func() bool {
		got = o.placeOf(t, token, product).name()
		return got == want
	})
}

// TestProductCopy_NewestWinsWhateverTheOrderAndRepeats: an update that
// comes before the creation it follows, and either of them twice, leave the
// copy at the newest version.
func TestProductCopy_NewestWinsWhateverTheOrderAndRepeats(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	_, ann := o.Auth.Customer()
	id := uuid.NewString()
	at := time.Now().UTC().Truncate(time.Microsecond)
	created := productevents.ProductCreated{ProductID: id, SKU: "PEN-1", Name: "Pen", Price: "2.50", CreatedAt: at}
	renamed := productevents.ProductUpdated{ProductID: id, Name: "Fine pen", Price: "2.75", Active: true, UpdatedAt: at.Add(time.Second)}
	o.publish(t, renamed)
	o.nameIs(t, ann, id, "Fine pen")
	o.publish(t, created, created, renamed)
	// A marker published after them: once it is in the copy, they were applied.
	marker := uuid.NewString()
	o.publish(t, productevents.ProductCreated{ProductID: marker, SKU: "M", Name: "Marker", Price: "1.00", CreatedAt: at})
	o.nameIs(t, ann, marker, "Marker")
	if got := o.placeOf(t, ann, id).name(); got != "Fine pen" {
		t.Errorf("after an older product.created, and repeats, a new order names the product %q, want the newest %q", got, "Fine pen")
	}
}

// TestCustomerCopy_NewestWinsAndStaffSeeTheName: staff see the customer's
// username and display name on the list and the order; an older
// user.updated arriving late changes nothing, a newer one does.
func TestCustomerCopy_NewestWinsAndStaffSeeTheName(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	annID, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	placed := o.placeOf(t, ann, uuid.NewString())
	if placed.Customer.ID != annID || placed.Customer.Username != nil {
		t.Errorf("before the copy knows ann, customer = %+v, want her id and null names", placed.Customer)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	o.publish(t, userevents.UserRegistered{UserID: annID, Username: "ann", DisplayName: "Ann Smith", Roles: []string{"customer"}, RegisteredAt: at},
		userevents.UserUpdated{UserID: annID, Username: "ann", DisplayName: "Ann Jones", Roles: []string{"customer"}, UpdatedAt: at.Add(2 * time.Second)},
		userevents.UserUpdated{UserID: annID, Username: "ann", DisplayName: "Ann Older", Roles: []string{"customer"}, UpdatedAt: at.Add(time.Second)})
	testkit.Eventually(t, "staff to see ann's newest name", func() bool {
		got := o.getNamed(t, staff, placed.ID).Customer
		return got.DisplayName != nil && *got.DisplayName == "Ann Jones"
	})
	// A marker on the same topic, after the older update: once it shows, that one was applied.
	bobID, bob := o.Auth.Customer()
	bobs := o.placeOf(t, bob, uuid.NewString())
	o.publish(t, userevents.UserUpdated{UserID: bobID, Username: "bob", Roles: []string{"customer"}, UpdatedAt: at})
	testkit.Eventually(t, "staff to see bob", func() bool { return o.getNamed(t, staff, bobs.ID).Customer.Username != nil })
	r := o.api.Do("GET", "/api/v1/orders", nil, testkit.Bearer(staff))
	var page struct{ Items []namedOrder }
	r.Decode(t, &page)
	if len(page.Items) != 2 || page.Items[1].Customer.Username == nil || *page.Items[1].Customer.Username != "ann" ||
		*page.Items[1].Customer.DisplayName != "Ann Jones" {
		t.Errorf("staff list shows %+v, want bob's order and then ann's, from ann (Ann Jones)", page.Items)
	}
}

// TestPlace_ALineNamedOnceTheCopyCatchesUp: an order placed before the copy
// knows its product has no name at first; product.created names it, also
// after the order was rejected, and a rename later does not touch it.
func TestPlace_ALineNamedOnceTheCopyCatchesUp(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	_, ann := o.Auth.Customer()
	id := uuid.NewString()
	placed := o.placeOf(t, ann, id)
	if placed.name() != "" {
		t.Fatalf("an order of a product the copy does not know is named %q", placed.name())
	}
	o.reject(t, placed.ID)
	o.waitStatus(t, ann, placed.ID, "rejected")
	at := time.Now().UTC().Truncate(time.Microsecond)
	o.publish(t, productevents.ProductCreated{ProductID: id, SKU: "LATE-1", Name: "Late lamp", Price: "30.00", CreatedAt: at})
	testkit.Eventually(t, "the rejected order's line to be named", func() bool { return o.getNamed(t, ann, placed.ID).name() == "Late lamp" })
	o.publish(t, productevents.ProductUpdated{ProductID: id, Name: "Lamp, renamed", Price: "30.00", Active: true, UpdatedAt: at.Add(time.Second)})
	o.nameIs(t, ann, id, "Lamp, renamed")
	if got := o.getNamed(t, ann, placed.ID).name(); got != "Late lamp" {
		t.Errorf("after a rename the old order's line reads %q, want the name it got, %q", got, "Late lamp")
	}
}

// TestPlace_ATotalTooLargeAtTheCopysPricesIs422: lines whose total at the
// copy's prices passes 99,999,999.99 are refused naming items, and no
// order is written.
func TestPlace_ATotalTooLargeAtTheCopysPricesIs422(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	_, ann := o.Auth.Customer()
	id := uuid.NewString()
	o.publish(t, productevents.ProductCreated{ProductID: id, SKU: "GOLD", Name: "Gold bar", Price: "60000000.00", CreatedAt: time.Now().UTC()})
	o.nameIs(t, ann, id, "Gold bar") // one is fine
	before := len(o.list(t, ann, nil).Items)
	r := o.api.Do("POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa",
		"items": []map[string]any{{"product_id": id, "quantity": 2}}}, testkit.Bearer(ann))
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("two gold bars: %d %s, want 422", r.Status, r.Body)
	}
	p := r.Problem(t)
	if errs, _ := p["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != "items" {
		t.Errorf("the problem is %v, want one error naming items", p)
	}
	if n := len(o.list(t, ann, nil).Items); n != before {
		t.Errorf("ann has %d orders after the refusal, want the %d before it", n, before)
	}
}

// TestBackfill_AskedAtStartFilledByPagesOlderOnesChangeNothing: a new copy
// asks its owner for a backfill at once; pages fill it, a page older than a
// live update already applied does not undo it, and the last page marks it
// filled. An operator's backfill asks again with a new request.
func TestBackfill_AskedAtStartFilledByPagesOlderOnesChangeNothing(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	_, ann := o.Auth.Customer()
	_, staff := o.Auth.Admin()
	req := moduletest.WaitFor(t, o.Events, "a backfill request for products", func(ev bus.BackfillRequested) bool { return ev.Source == "product" })
	moduletest.WaitFor(t, o.Events, "a backfill request for users", func(ev bus.BackfillRequested) bool { return ev.Source == "user" })
	if c := o.copies(t, staff)["products"]; c.FilledAt != nil || c.RequestID == nil || *c.RequestID != req.RequestID {
		t.Fatalf("products copy while its backfill is asked for: %+v, want request %s, not filled", c, req.RequestID)
	}
	a, b := uuid.NewString(), uuid.NewString()
	old := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	o.publish(t, productevents.ProductUpdated{ProductID: a, Name: "A, live", Price: "1.00", Active: true, UpdatedAt: old.Add(time.Minute)})
	o.nameIs(t, ann, a, "A, live") // applied before the pages (another topic, another group)
	o.publish(t, productevents.ProductsBackfilled{RequestID: req.RequestID, Products: []productevents.ProductState{
		{ProductID: a, Name: "A, old", Price: "1.00", Active: true, UpdatedAt: old}}})
	o.publish(t, productevents.ProductsBackfilled{RequestID: req.RequestID, Last: true, Products: []productevents.ProductState{
		{ProductID: b, Name: "B", Price: "1.00", Active: true, UpdatedAt: old}}})
	testkit.Eventually(t, "the products copy to be filled", func() bool { return o.copies(t, staff)["products"].FilledAt != nil })
	if got := o.copies(t, staff)["products"].Rows; got != 2 {
		t.Errorf("the filled copy holds %d products, want 2", got)
	}
	if got := o.placeOf(t, ann, a).name(); got != "A, live" {
		t.Errorf("a page older than the live update left the name %q, want %q", got, "A, live")
	}
	if got := o.placeOf(t, ann, b).name(); got != "B" {
		t.Errorf("a product from the last page is named %q, want B", got)
	}

	r := o.api.Do("POST", "/api/v1/orders/copies/products/backfill", nil, testkit.Bearer(staff))
	if r.Status != http.StatusAccepted {
		t.Fatalf("operator's backfill: %d %s", r.Status, r.Body)
	}
	var again copyJSON
	r.Decode(t, &again)
	if again.FilledAt != nil || again.RequestID == nil || *again.RequestID == req.RequestID {
		t.Errorf("after the operator asked, the copy is %+v; want a new request, not filled", again)
	}
	moduletest.WaitFor(t, o.Events, "the operator's backfill request", func(ev bus.BackfillRequested) bool { return ev.RequestID == *again.RequestID })
	if r := o.api.Do("POST", "/api/v1/orders/copies/prices/backfill", nil, testkit.Bearer(staff)); r.Status != http.StatusNotFound {
		t.Errorf("backfill of an unknown copy: %d, want 404", r.Status)
	}
	if r := o.api.Do("POST", "/api/v1/orders/copies/products/backfill", nil, testkit.Bearer(ann)); r.Status != http.StatusForbidden {
		t.Errorf("a customer asking for a backfill: %d, want 403", r.Status)
	}
}

// TestStockRejected_TheTimelineNamesTheProduct: the rejection's timeline
// entry names the short product by the name its line carries, not by id.
func TestStockRejected_TheTimelineNamesTheProduct(t *testing.T) {
	t.Parallel()
	o := startCopies(t)
	_, ann := o.Auth.Customer()
	id := uuid.NewString()
	o.publish(t, productevents.ProductCreated{ProductID: id, SKU: "MUG-B", Name: "Blue mug", Price: "8.00", CreatedAt: time.Now().UTC()})
	o.nameIs(t, ann, id, "Blue mug")
	placed := o.placeOf(t, ann, id)
	o.reject(t, placed.ID)
	o.waitStatus(t, ann, placed.ID, "rejected")
	r := o.api.Do("GET", "/api/v1/orders/"+placed.ID, nil, testkit.Bearer(ann))
	var got struct {
		Timeline []struct{ Step, Detail string }
	}
	r.Decode(t, &got)
	var detail string
	for _, e := range got.Timeline {
		if e.Step == "stock_rejected" {
			detail = e.Detail
		}
	}
	if detail != "not enough stock: Blue mug: 1 wanted, 0 available" {
		t.Errorf("stock_rejected reads %q, want the product named, not %s", detail, id)
	}
}
