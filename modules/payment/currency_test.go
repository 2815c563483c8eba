package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// TestCurrency_PaymentsAndRefundsAreInTheOrdersCurrency: a payment keeps
// the currency payment.requested gives it, and its refund is in it too, in
// the API and on the outcome events; a request from before requests
// carried one is in the shop's (here USD).
func TestCurrency_PaymentsAndRefundsAreInTheOrdersCurrency(t *testing.T) {
	t.Parallel()
	shop := startPaymentWith(t, payment.Config{Currency: "USD"})
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	userID, token := shop.Customer(t)
	ctx := context.Background()

	inEUR, older := uuid.NewString(), uuid.NewString()
	for order, currency := range map[string]string{inEUR: "EUR", older: ""} {
		err := shop.Publish(bus.WithCorrelationID(ctx, order), orderevents.PaymentRequested{OrderID: order, UserID: userID,
			Amount: "12.50", Currency: currency, PaymentMethod: "pm_card_visa", RequestedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	for order, want := range map[string]string{inEUR: "EUR", older: "USD"} {
		paid := waitOutcome(t, db, "payment.succeeded.v1", order)
		if got := paid[0].Payload["currency"]; got != want {
			t.Errorf("payment.succeeded of an order in %s says %v", want, got)
		}
		if err := shop.Publish(ctx, orderevents.RefundRequested{OrderID: order, Reason: "payment_after_cancel"}); err != nil {
			t.Fatal(err)
		}
		refunded := waitOutcome(t, db, "payment.refunded.v1", order)
		if got := refunded[0].Payload["currency"]; got != want {
			t.Errorf("payment.refunded of an order in %s says %v", want, got)
		}
		r, _ := orderPayments(t, shop, token, order)
		var body struct {
			Items []struct {
				Currency string `json:"currency"`
				Refunds  []struct {
					Currency string `json:"currency"`
				} `json:"refunds"`
			} `json:"items"`
		}
		r.Decode(t, &body)
		if len(body.Items) != 1 || len(body.Items[0].Refunds) != 1 {
			t.Fatalf("payments = %s, want one with one refund", r.Body)
		}
		if p := body.Items[0]; p.Currency != want || p.Refunds[0].Currency != want {
			t.Errorf("payment in %q with a refund in %q, want both %s", p.Currency, p.Refunds[0].Currency, want)
		}
	}
}
