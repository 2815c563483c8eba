package events_test

import (
	"flag"
	"testing"
	"time"

	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/platform/testkit/eventcontract"
)

var update = flag.Bool("update", false, "write testdata/*.json from the examples (a compatible change only)")

// TestEvents_MatchTheirGoldenFiles pins each event's wire shape to
// testdata/<event name>.json: the order saga decodes exactly this.
func TestEvents_MatchTheirGoldenFiles(t *testing.T) {
	const (
		orderID   = "0195a1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b"
		paymentID = "0195a1c3-0000-7111-8222-333344445555"
	)
	at := time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)
	eventcontract.Check(t, *update,
		events.PaymentSucceeded{OrderID: orderID, PaymentID: paymentID, Amount: "42.50", Currency: "EUR", CapturedAt: at},
		events.PaymentFailed{OrderID: orderID, PaymentID: paymentID, Reason: "declined", FailedAt: at},
		events.PaymentRefunded{OrderID: orderID, PaymentID: paymentID, RefundID: "0195a1c4-9999-7888-8777-666655554444", Amount: "42.50", Currency: "EUR", RefundedAt: at},
		events.PaymentRefundFailed{OrderID: orderID, PaymentID: paymentID, RefundID: "0195a1c4-9999-7888-8777-666655554444", Amount: "42.50", Currency: "EUR",
			Reason: "rejected: the capture was disputed", FailedAt: at},
	)
}
