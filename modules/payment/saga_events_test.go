package payment_test

import (
	"context"
	"database/sql"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// charge publishes payment.requested as the order module would, with the
// order request's idempotency key in the metadata, and returns the order id.
func charge(t *testing.T, shop *shop, userID, amount, method, key string) string {
	t.Helper()
	order := uuid.NewString()
	publishCharge(t, shop, order, userID, amount, method, key)
	return order
}

func publishCharge(t *testing.T, shop *shop, order, userID, amount, method, key string) {
	t.Helper()
	publishChargeWith(context.Background(), t, shop, order, userID, amount, method, key)
}

// publishChargeIn publishes a charge of 10.00 on pm_card_visa as ctx (a
// span, say) holds it.
func publishChargeIn(ctx context.Context, t *testing.T, shop *shop, order, userID string) {
	t.Helper()
	publishChargeWith(ctx, t, shop, order, userID, "10.00", "pm_card_visa", order)
}

func publishChargeWith(ctx context.Context, t *testing.T, shop *shop, order, userID, amount, method, key string) {
	t.Helper()
	ctx = bus.WithIdempotencyKey(bus.WithCorrelationID(ctx, order), key)
	err := shop.Publish(ctx, orderevents.PaymentRequested{OrderID: order, UserID: userID, Amount: amount, PaymentMethod: method, RequestedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

// waitOutcome waits until topic has a message for order and returns them all.
func waitOutcome(t *testing.T, db *sql.DB, topic, order string) []published {
	t.Helper()
	var got []published
	testkit.Eventually(t, topic+" for order "+order, func() bool {
		got = messages(t, db, topic, order)
		return len(got) > 0
	})
	return got
}

func providerOps(t *testing.T, db *sql.DB, kind, key string) int64 {
	t.Helper()
	return testkit.QueryInt(t, db, `SELECT count(*) FROM payments.test_provider_operations WHERE kind = $1 AND idempotency_key = $2`, kind, key)
}

// TestCharge_VisaIsCapturedOnceWhenTheRequestArrivesTwice: payment.requested
// delivered twice for one order records one payment, captures once at the
// provider and publishes payment.succeeded once, correlated with the order
// and carrying the order request's idempotency key.
func TestCharge_VisaIsCapturedOnceWhenTheRequestArrivesTwice(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)

	order := uuid.NewString()
	for range 2 { // two messages for one order, as a retrying publisher might send
		publishCharge(t, shop, order, userID, "24.5", "pm_card_visa", "order-key-1")
	}
	first := waitOutcome(t, db, "payment.succeeded.v1", order)
	// A marker behind the duplicate: once it is charged, the duplicate was handled.
	marker := charge(t, shop, userID, "1.00", "pm_card_visa", "order-key-2")
	waitOutcome(t, db, "payment.succeeded.v1", marker)

	succeeded := messages(t, db, "payment.succeeded.v1", order)
	if len(succeeded) != 1 {
		t.Fatalf("payment.succeeded published %d times for one order, want once", len(succeeded))
	}
	ev, md := first[0].Payload, first[0].Metadata
	if ev["amount"] != "24.50" || ev["payment_id"] == "" || ev["captured_at"] == "" {
		t.Errorf("payment.succeeded payload = %v, want amount 24.50 with payment id and time", ev)
	}
	if md["correlation_id"] != order || md["idempotency_key"] != "order-key-1" || md["event"] != "payment.succeeded.v1" {
		t.Errorf("payment.succeeded metadata = %v, want correlation id %s and idempotency key order-key-1", md, order)
	}
	if n := messages(t, db, "payment.failed.v1", order); len(n) != 0 {
		t.Errorf("payment.failed published too: %v", n)
	}
	paymentID, _ := ev["payment_id"].(string)
	if n := providerOps(t, db, "capture", paymentID); n != 1 {
		t.Errorf("the provider captured payment %s %d times, want once", paymentID, n)
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM payments.test_provider_operations WHERE kind = 'capture'`); n != 2 {
		t.Errorf("the provider captured %d times for two orders, want 2", n)
	}

	r, pays := orderPayments(t, shop, token, order)
	if r.Status != http.StatusOK || len(pays) != 1 {
		t.Fatalf("GET payments: %d %s, want one payment", r.Status, r.Body)
	}
	p := pays[0]
	if p.ID != paymentID || p.Status != "captured" || p.Amount != "24.50" || p.Method != "pm_card_visa" || p.UserID != userID ||
		p.NetAmount != "24.50" || p.RefundedAmount != "0.00" || p.Attempts != 1 || p.CapturedAt == nil || p.FailureReason != nil || len(p.Refunds) != 0 {
		t.Errorf("payment = %+v, want captured 24.50 by pm_card_visa, net 24.50, after one attempt", p)
	}
}

func TestCharge_DeclinedAndUnknownCardsFailWithTheirReason(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)
	for method, reason := range map[string]string{
		"pm_card_chargeDeclined": "declined",
		"pm_card_amex_unknown":   "invalid_method",
		"not a method!":          "invalid_method",
	} {
		order := charge(t, shop, userID, "9.99", method, "")
		failed := waitOutcome(t, db, "payment.failed.v1", order)
		if len(failed) != 1 || failed[0].Payload["reason"] != reason || failed[0].Metadata["correlation_id"] != order {
			t.Errorf("%s: payment.failed = %+v, want one with reason %s correlated with the order", method, failed, reason)
		}
		// No idempotency key on the request: the order id stands in.
		if failed[0].Metadata["idempotency_key"] != order {
			t.Errorf("%s: idempotency key %q, want the order id", method, failed[0].Metadata["idempotency_key"])
		}
		if s := messages(t, db, "payment.succeeded.v1", order); len(s) != 0 {
			t.Errorf("%s: payment.succeeded published: %v", method, s)
		}
		_, pays := orderPayments(t, shop, token, order)
		if len(pays) != 1 || pays[0].Status != "failed" || pays[0].FailureReason == nil || *pays[0].FailureReason != reason ||
			pays[0].NetAmount != "0.00" || pays[0].FailedAt == nil {
			t.Errorf("%s: payments = %+v, want one failed (%s) netting 0.00", method, pays, reason)
		}
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM payments.test_provider_operations WHERE kind = 'capture'`); n != 0 {
		t.Errorf("the provider captured %d times for declined cards", n)
	}
}

// TestRefund_AfterCaptureRefundsOnceAndTheLedgerNetsZero: a refund request
// for a captured payment (delivered twice) refunds it in full once; one for
// an order without a captured payment refunds nothing.
func TestRefund_AfterCaptureRefundsOnceAndTheLedgerNetsZero(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)
	ctx := context.Background()

	order := charge(t, shop, userID, "31.40", "pm_card_visa", "late-charge")
	paid := waitOutcome(t, db, "payment.succeeded.v1", order)
	declined := charge(t, shop, userID, "5.00", "pm_card_chargeDeclined", "")
	waitOutcome(t, db, "payment.failed.v1", declined)

	for _, o := range []string{order, order, declined, uuid.NewString()} {
		if err := shop.Publish(bus.WithCorrelationID(ctx, o), orderevents.RefundRequested{OrderID: o, Reason: "payment_after_cancel"}); err != nil {
			t.Fatal(err)
		}
	}
	refunded := waitOutcome(t, db, "payment.refunded.v1", order)
	// A marker behind the duplicates.
	marker := charge(t, shop, userID, "2.00", "pm_card_visa", "")
	waitOutcome(t, db, "payment.succeeded.v1", marker)
	if err := shop.Publish(ctx, orderevents.RefundRequested{OrderID: marker, Reason: "marker"}); err != nil {
		t.Fatal(err)
	}
	waitOutcome(t, db, "payment.refunded.v1", marker)

	if got := messages(t, db, "payment.refunded.v1", order); len(got) != 1 {
		t.Fatalf("payment.refunded published %d times, want once", len(got))
	}
	ev, md := refunded[0].Payload, refunded[0].Metadata
	if ev["amount"] != "31.40" || ev["payment_id"] != paid[0].Payload["payment_id"] || ev["refund_id"] == "" || md["correlation_id"] != order {
		t.Errorf("payment.refunded = %v %v, want the full 31.40 of the order's payment, correlated with the order", ev, md)
	}
	if n := messages(t, db, "payment.refunded.v1", declined); len(n) != 0 {
		t.Errorf("an order without a captured payment was refunded: %v", n)
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM payments.refunds`); n != 2 {
		t.Errorf("%d refunds recorded, want 2 (the order and the marker)", n)
	}
	refundID, _ := ev["refund_id"].(string)
	if n := providerOps(t, db, "refund", refundID); n != 1 {
		t.Errorf("the provider refunded %d times, want once", n)
	}

	_, pays := orderPayments(t, shop, token, order)
	if len(pays) != 1 {
		t.Fatalf("payments = %+v, want one", pays)
	}
	p := pays[0]
	if p.Status != "refunded" || p.Amount != "31.40" || p.RefundedAmount != "31.40" || p.NetAmount != "0.00" ||
		len(p.Refunds) != 1 || p.Refunds[0].Status != "succeeded" || p.Refunds[0].Amount != "31.40" || p.Refunds[0].Reason != "payment_after_cancel" {
		t.Errorf("payment = %+v, want 31.40 refunded in full (status refunded), netting 0.00", p)
	}
	captured := testkit.QueryInt(t, db, `SELECT coalesce(sum(amount) * 100, 0)::bigint FROM payments.payments WHERE order_id = $1 AND status = 'captured'`, order)
	back := testkit.QueryInt(t, db, `SELECT coalesce(sum(r.amount) * 100, 0)::bigint FROM payments.refunds r
		JOIN payments.payments p ON p.id = r.payment_id WHERE p.order_id = $1 AND r.status = 'succeeded'`, order)
	if captured != 3140 || back != 3140 {
		t.Errorf("the ledger shows %d cents captured and %d refunded, want 3140 and 3140 (net zero)", captured, back)
	}
}
