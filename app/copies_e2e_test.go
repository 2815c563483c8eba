package app_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// TestCopies_SingleBinary runs copiesAndBackfill on the single binary (one
// process, every module, the PostgreSQL bus); TestSplit and
// TestSplitDatabases run it split, the latter over RabbitMQ.
func TestCopies_SingleBinary(t *testing.T) {
	split := apptest.StartSplit(t, apptest.SplitOptions{OneProcess: true})
	copiesAndBackfill(t, split, "all")
}

type copiedOrder struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Customer struct {
		ID          string  `json:"id"`
		Username    *string `json:"username"`
		DisplayName *string `json:"display_name"`
	} `json:"customer"`
	Items []struct {
		Name *string `json:"name"`
	} `json:"items"`
}

func (o copiedOrder) name() string {
	if len(o.Items) != 1 || o.Items[0].Name == nil {
		return ""
	}
	return *o.Items[0].Name
}

// copiesAndBackfill: an order placed the instant its product is created
// shows the product's name once the order module's copy catches up; a
// rename shows in new orders while old ones keep their name; staff see the
// customer's username. Then the shop is upgraded as an existing one would
// be (the order module's copies empty, the products and accounts there):
// its process (orderProcess) starts, asks for backfills and is filled from
// them, though no old event is replayed.
func copiesAndBackfill(t *testing.T, split *apptest.Split, orderProcess string) {
	// The admin (also a customer) places the orders: the split shops' other
	// subtests have used up the registrations one address may make.
	customerID, admin := split.Admin(t)
	customer := admin
	api := split.Client(t)
	var me struct{ Username string }
	api.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(customer)).Decode(t, &me)

	sku := strings.ToUpper(strings.ReplaceAll(apptest.Unique("COPY-"), "_", "-"))
	var product struct{ ID string }
	r := api.Do("POST", "/api/v1/products", map[string]any{"sku": sku, "name": "Copy lamp", "price": "12.00", "stock": 100}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create the product: %d %s", r.Status, r.Body)
	}
	r.Decode(t, &product)
	place := func() copiedOrder {
		t.Helper()
		r := api.Do("POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa",
			"items": []map[string]any{{"product_id": product.ID, "quantity": 1}}}, testkit.Bearer(customer))
		if r.Status != http.StatusAccepted {
			t.Fatalf("place an order: %d %s", r.Status, r.Body)
		}
		var o copiedOrder
		r.Decode(t, &o)
		return o
	}
	get := func(token, id string) copiedOrder {
		t.Helper()
		var o copiedOrder
		api.Do("GET", "/api/v1/orders/"+id, nil, testkit.Bearer(token)).Decode(t, &o)
		return o
	}

	first := place()
	testkit.Eventually(t, "the order placed at once to show the product's name", func() bool {
		return get(customer, first.ID).name() == "Copy lamp"
	})
	testkit.Eventually(t, "the first order to be confirmed", func() bool { return get(customer, first.ID).Status == "confirmed" })

	if r := api.Do("PATCH", "/api/v1/products/"+product.ID, map[string]any{"name": "Copy lamp, brass"}, testkit.Bearer(admin)); r.Status != http.StatusOK {
		t.Fatalf("rename the product: %d %s", r.Status, r.Body)
	}
	testkit.Eventually(t, "a new order to be named by the rename when placed", func() bool { return place().name() == "Copy lamp, brass" })
	if got := get(customer, first.ID).name(); got != "Copy lamp" {
		t.Errorf("after the rename the first order's line reads %q, want the name it was placed with", got)
	}

	var staffView copiedOrder
	testkit.Eventually(t, "staff to see the customer's username", func() bool {
		staffView = get(admin, first.ID)
		return staffView.Customer.Username != nil
	})
	if staffView.Customer.ID != customerID || *staffView.Customer.Username != me.Username {
		t.Errorf("staff see customer %+v, want %s (%s)", staffView.Customer, me.Username, customerID)
	}

	// The upgrade: the copies as the migration leaves them, products and accounts in their modules.
	split.Stop(t, orderProcess)
	db, err := sql.Open("pgx", split.ModuleDatabases["order"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(context.Background(), `TRUNCATE orders.product_copies, orders.customer_copies;
		UPDATE orders.copy_backfills SET request_id = NULL, requested_at = NULL, filled_at = NULL`); err != nil {
		t.Fatal(err)
	}
	split.Restart(t, orderProcess)
	type copyState struct {
		Copy     string
		Rows     int
		FilledAt *string `json:"filled_at"`
	}
	testkit.Eventually(t, "both copies to be filled by their backfills", func() bool {
		var page struct{ Items []copyState }
		api.Do("GET", "/api/v1/orders/copies", nil, testkit.Bearer(admin)).Decode(t, &page)
		filled := 0
		for _, c := range page.Items {
			if c.FilledAt != nil && c.Rows > 0 {
				filled++
			}
		}
		return filled == 2
	})
	if got := place().name(); got != "Copy lamp, brass" {
		t.Errorf("after the backfill a new order is named %q at placement, want %q", got, "Copy lamp, brass")
	}
	if got := get(admin, first.ID).Customer.Username; got == nil || *got != me.Username {
		t.Errorf("after the backfill staff see username %v, want %s", got, me.Username)
	}
}
