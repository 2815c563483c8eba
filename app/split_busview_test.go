package app_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// busHandlers are the bus handlers of the split shop, by the process that
// runs them (telemetry.ServiceName of its module).
var busHandlers = map[string]string{
	"product.reserve_stock":         "modshop-product",
	"product.commit_stock":          "modshop-product",
	"product.release_on_cancel":     "modshop-product",
	"product.release_on_reject":     "modshop-product",
	"order.on_stock_reserved":       "modshop-order",
	"order.on_stock_rejected":       "modshop-order",
	"order.on_payment_succeeded":    "modshop-order",
	"order.on_payment_failed":       "modshop-order",
	"order.on_payment_refunded":     "modshop-order",
	"order.on_refund_failed":        "modshop-order",
	"payment.charge":                "modshop-payment",
	"payment.refund":                "modshop-payment",
	"product.on_backfill_requested": "modshop-product",
	"user.on_backfill_requested":    "modshop-user",
	"order.on_product_created":      "modshop-order",
	"order.on_product_updated":      "modshop-order",
	"order.on_product_backfilled":   "modshop-order",
	"order.on_user_registered":      "modshop-order",
	"order.on_user_updated":         "modshop-order",
	"order.on_user_backfilled":      "modshop-order",
}

// busViewThroughGateway checks the one view of the bus (issue 15, item 7)
// through the gateway of a split shop whose saga suite has run: the staff
// bus API shows every process's handlers, each once and labelled with its
// process, those the saga used with a last processed time; a dead letter
// made in the product process shows there, and its replay and discard
// reach the product process.
func busViewThroughGateway(t *testing.T, split *apptest.Split) {
	_, admin := split.Admin(t)
	api := split.Client(t)

	var overview struct {
		Topics []bus.TopicStats `json:"topics"`
	}
	api.Do("GET", "/api/v1/admin/bus", nil, testkit.Bearer(admin)).Decode(t, &overview)
	rows := map[string][]bus.ConsumerStats{}
	published := map[string]int64{}
	for _, tp := range overview.Topics {
		published[tp.Topic] = tp.Published
		for _, c := range tp.Consumers {
			rows[c.Handler] = append(rows[c.Handler], c)
		}
	}
	for handler, process := range busHandlers {
		got := rows[handler]
		if len(got) != 1 || got[0].Process != process {
			t.Errorf("the gateway's bus view shows %s as %+v; want one row, from %s", handler, got, process)
		}
	}
	for _, handler := range []string{"product.reserve_stock", "product.commit_stock", "order.on_stock_reserved", "order.on_payment_succeeded", "payment.charge"} {
		if got := rows[handler]; len(got) == 1 && got[0].LastProcessed == nil {
			t.Errorf("after the saga suite, %s reads last processed: never", handler)
		}
	}
	if published["order.placed.v1"] == 0 || published["payment.succeeded.v1"] == 0 {
		t.Errorf("after the saga suite, the gateway's bus view counts published order.placed.v1 %d, payment.succeeded.v1 %d",
			published["order.placed.v1"], published["payment.succeeded.v1"])
	}

	// Two messages the product process cannot apply (an order.placed with
	// an invalid order id): each becomes a dead letter there.
	replayID, discardID := uuid.NewString(), uuid.NewString()
	publishPoison(t, split, replayID)
	publishPoison(t, split, discardID)
	type letters struct {
		Items []bus.DeadLetter `json:"items"`
	}
	byMessage := map[string]bus.DeadLetter{}
	deadline := time.Now().Add(2 * time.Minute)
	for byMessage[replayID].ID == 0 || byMessage[discardID].ID == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the product process's dead letters do not show through the gateway: %+v", byMessage)
		}
		time.Sleep(200 * time.Millisecond)
		var l letters
		api.Do("GET", "/api/v1/admin/dead-letters", nil, testkit.Bearer(admin)).Decode(t, &l)
		for _, d := range l.Items {
			byMessage[d.MessageID] = d
		}
	}
	for _, id := range []string{replayID, discardID} {
		if d := byMessage[id]; d.Handler != "product.reserve_stock" || d.Process != "modshop-product" {
			t.Errorf("dead letter through the gateway: %+v; want product.reserve_stock's, from modshop-product", d)
		}
	}
	api.Do("GET", "/api/v1/admin/bus", nil, testkit.Bearer(admin)).Decode(t, &overview)
	for _, tp := range overview.Topics {
		for _, c := range tp.Consumers {
			if c.Handler == "product.reserve_stock" && c.DeadLetters < 2 {
				t.Errorf("the gateway's bus view shows %d dead letters for product.reserve_stock, want 2 or more", c.DeadLetters)
			}
		}
	}

	// Replay: the product process applies it again (and it fails again:
	// the payload is still wrong), and says so; the letter records the try.
	d := byMessage[replayID]
	path := fmt.Sprintf("/api/v1/admin/dead-letters/%d", d.ID)
	q := "?process=" + d.Process
	r := api.Do("POST", path+"/replay"+q, nil, testkit.Bearer(admin))
	if detail, _ := r.Problem(t)["detail"].(string); r.Status != http.StatusConflict || !strings.Contains(detail, "failed again") || !strings.Contains(detail, "invalid order id") {
		t.Errorf("replay through the gateway: %d %s; want 409, product.reserve_stock failing again", r.Status, r.Body)
	}
	var after bus.DeadLetter
	api.Do("GET", path+q, nil, testkit.Bearer(admin)).Decode(t, &after)
	if after.MessageID != replayID || after.Replays != 1 || after.Process != "modshop-product" {
		t.Errorf("after its replay, the dead letter through the gateway: %+v; want the product process's, replayed once", after)
	}
	if after.Metadata[bus.KeyEvent] != "order.placed.v1" {
		t.Errorf("the dead letter's metadata: %v", after.Metadata)
	}

	// Discard: the product process closes it; the open list no longer has it.
	d = byMessage[discardID]
	path = fmt.Sprintf("/api/v1/admin/dead-letters/%d", d.ID)
	if r := api.Do("DELETE", path+"?process="+d.Process, nil, testkit.Bearer(admin)); r.Status != http.StatusNoContent {
		t.Fatalf("discard through the gateway: %d %s", r.Status, r.Body)
	}
	var open, all letters
	api.Do("GET", "/api/v1/admin/dead-letters", nil, testkit.Bearer(admin)).Decode(t, &open)
	api.Do("GET", "/api/v1/admin/dead-letters?state=all", nil, testkit.Bearer(admin)).Decode(t, &all)
	for _, x := range open.Items {
		if x.MessageID == discardID {
			t.Errorf("the discarded dead letter is still open: %+v", x)
		}
	}
	discarded := false
	for _, x := range all.Items {
		if x.MessageID == discardID {
			discarded = x.Resolution != nil && *x.Resolution == "discarded" && x.Process == "modshop-product"
		}
	}
	if !discarded {
		t.Errorf("the discarded dead letter is not listed as discarded by the product process: %+v", all.Items)
	}

	// Staff only, as in each process.
	_, customer := split.Customer(t)
	if r := api.Do("GET", "/api/v1/admin/dead-letters", nil, testkit.Bearer(customer)); r.Status != http.StatusForbidden {
		t.Errorf("a customer on the gateway's dead letters: %d, want 403", r.Status)
	}
}

// publishPoison publishes, as the order process would, an order.placed
// that the product process's handler refuses for good (its order id is not
// a UUID): on the shared database, into the topic's table; with a database
// per module, into the order process's outbox, whose forwarder sends it
// to RabbitMQ.
func publishPoison(t *testing.T, split *apptest.Split, messageID string) {
	t.Helper()
	db, err := sql.Open("pgx", split.ModuleDatabases["order"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const event = "order.placed.v1"
	payload := `{"order_id": "not-an-order", "user_id": "nobody", "lines": [], "placed_at": "2026-01-01T00:00:00Z"}`
	metadata := map[string]string{bus.KeyEvent: event, bus.KeyOccurredAt: time.Now().UTC().Format(time.RFC3339Nano), bus.KeyCorrelationID: "busview-" + messageID}
	md, _ := json.Marshal(metadata)
	ctx := context.Background()
	if split.ModuleDatabases["order"] == split.ModuleDatabases["product"] {
		_, err = db.ExecContext(ctx, `INSERT INTO bus."m_`+event+`" (uuid, payload, metadata, transaction_id) VALUES ($1, $2, $3, pg_current_xact_id())`,
			messageID, payload, string(md))
	} else {
		envelope, _ := json.Marshal(map[string]any{"destination_topic": event, "uuid": messageID, "payload": []byte(payload), "metadata": metadata})
		_, err = db.ExecContext(ctx, `INSERT INTO bus."m_bus.outbox" (uuid, payload, metadata, transaction_id) VALUES ($1, $2, '{}', pg_current_xact_id())`,
			uuid.NewString(), string(envelope))
	}
	if err != nil {
		t.Fatalf("publish a poison order.placed: %v", err)
	}
}
