package payment_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// TestRefund_InPartsThroughTheWorkerNeverPastTheCapture: staff refunds
// (a refund id and an amount each) of one payment are recorded once per
// refund id however often asked, carried out through the provider, and
// published with their id and amount; the payment reads partly_refunded,
// then refunded. One that would take the refunds past the capture is not
// recorded.
func TestRefund_InPartsThroughTheWorkerNeverPastTheCapture(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)
	ctx := context.Background()
	order := charge(t, shop, userID, "30.00", "pm_card_visa", "")
	waitOutcome(t, db, "payment.succeeded.v1", order)
	ask := func(refundID, amount string) {
		t.Helper()
		ev := orderevents.RefundRequested{OrderID: order, RefundID: refundID, Amount: amount, Reason: "damaged"}
		if err := shop.Publish(bus.WithCorrelationID(ctx, order), ev); err != nil {
			t.Fatal(err)
		}
	}
	refunded := func(n int) []published {
		var got []published
		testkit.Eventually(t, "payment.refunded for the order", func() bool {
			got = messages(t, db, "payment.refunded.v1", order)
			return len(got) >= n
		})
		return got
	}

	first := uuid.NewString()
	ask(first, "10.00")
	ask(first, "10.00")
	got := refunded(1)
	if got[0].Payload["refund_id"] != first || got[0].Payload["amount"] != "10.00" {
		t.Fatalf("payment.refunded = %v, want refund %s of 10.00", got[0].Payload, first)
	}
	if _, pays := orderPayments(t, shop, token, order); len(pays) != 1 || pays[0].Status != "partly_refunded" || pays[0].NetAmount != "20.00" {
		t.Fatalf("payments = %+v, want one partly_refunded netting 20.00", pays)
	}

	ask(uuid.NewString(), "20.01") // more than is left: not recorded
	rest := uuid.NewString()
	ask(rest, "20.00")
	got = refunded(2)
	if len(got) != 2 || got[1].Payload["refund_id"] != rest || got[1].Payload["amount"] != "20.00" {
		t.Fatalf("payment.refunded = %v, want the first and then refund %s of 20.00", got, rest)
	}
	_, pays := orderPayments(t, shop, token, order)
	if len(pays) != 1 || pays[0].Status != "refunded" || pays[0].RefundedAmount != "30.00" || pays[0].NetAmount != "0.00" || len(pays[0].Refunds) != 2 {
		t.Fatalf("payments = %+v, want one refunded in full by two refunds", pays)
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM payments.test_provider_operations WHERE kind = 'refund'
		AND target = (SELECT provider_capture FROM payments.payments WHERE order_id = $1)`, order); n != 2 {
		t.Errorf("the provider refunded %d times, want 2", n)
	}
}

// TestRefund_TheDatabaseRefusesRefundsPastTheCapture: the trigger
// refunds_within_capture holds the bound whatever code writes the rows.
func TestRefund_TheDatabaseRefusesRefundsPastTheCapture(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, _ := shop.Customer(t)
	order := charge(t, shop, userID, "5.00", "pm_card_visa", "")
	waitOutcome(t, db, "payment.succeeded.v1", order)
	insert := func(amount string) error {
		_, err := db.Exec(`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key)
			SELECT $1, id, $2::numeric, 'failed', 'k' FROM payments.payments WHERE order_id = $3`, uuid.NewString(), amount, order)
		if err != nil {
			return err
		}
		_, err = db.Exec(`UPDATE payments.refunds SET status = 'pending', failure_reason = NULL, failed_at = NULL
			WHERE payment_id = (SELECT id FROM payments.payments WHERE order_id = $1) AND status = 'failed'`, order)
		return err
	}
	if _, err := db.Exec(`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key)
		SELECT $1, id, 3.00, 'pending', 'k' FROM payments.payments WHERE order_id = $2`, uuid.NewString(), order); err != nil {
		t.Fatalf("a refund within the capture: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key)
		SELECT $1, id, 2.01, 'pending', 'k' FROM payments.payments WHERE order_id = $2`, uuid.NewString(), order); err == nil {
		t.Fatal("a refund past the capture was recorded")
	}
	if err := insert("2.01"); err == nil {
		t.Fatal("a failed refund past the capture was made pending again")
	}
}

// TestRefund_TheProviderRefusesItPaymentRefundFailedSaysSo: a refund the
// provider refuses for good (here: the capture it names is not in the
// provider's books) is recorded failed and published once as
// payment.refund_failed with its id, amount, currency and the refusal,
// never as payment.refunded; the payment keeps its capture.
func TestRefund_TheProviderRefusesItPaymentRefundFailedSaysSo(t *testing.T) {
	t.Parallel()
	shop := startPayment(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)
	order := charge(t, shop, userID, "12.00", "pm_card_visa", "")
	waitOutcome(t, db, "payment.succeeded.v1", order)
	if _, err := db.Exec(`UPDATE payments.payments SET provider_capture = 'cap_unknown_to_the_provider' WHERE order_id = $1`, order); err != nil {
		t.Fatal(err)
	}
	refund := uuid.NewString()
	ev := orderevents.RefundRequested{OrderID: order, RefundID: refund, Amount: "5.00", Reason: "damaged"}
	if err := shop.Publish(bus.WithCorrelationID(context.Background(), order), ev); err != nil {
		t.Fatal(err)
	}
	got := waitOutcome(t, db, "payment.refund_failed.v1", order)
	p := got[0].Payload
	if len(got) != 1 || p["refund_id"] != refund || p["amount"] != "5.00" || p["currency"] != "EUR" ||
		!strings.Contains(p["reason"].(string), "no capture") || p["failed_at"] == "" {
		t.Fatalf("payment.refund_failed = %v, want one for refund %s of 5.00 EUR saying why", got, refund)
	}
	if n := len(messages(t, db, "payment.refunded.v1", order)); n != 0 {
		t.Errorf("%d payment.refunded for a refused refund, want none", n)
	}
	if n := testkit.QueryInt(t, db, `SELECT count(*) FROM payments.refunds WHERE id = $1 AND status = 'failed'`, refund); n != 1 {
		t.Errorf("refund %s is not recorded failed", refund)
	}
	if _, pays := orderPayments(t, shop, token, order); len(pays) != 1 || pays[0].Status != "captured" || pays[0].NetAmount != "12.00" {
		t.Errorf("payments = %+v, want one still captured netting 12.00", pays)
	}
}
