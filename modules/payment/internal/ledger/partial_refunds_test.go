package ledger_test

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"gorm.io/gorm"

	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit"
)

// TestRecordRefund_RacingRefundsNeverRecordMoreThanTheCapture: ten
// refunds of 4.00 asked for at once on a capture of 10.00 record two
// (each handler sums the payment's refunds under its row lock); a refund
// id asked for again records nothing; the worker carries out what was
// recorded.
func TestRecordRefund_RacingRefundsNeverRecordMoreThanTheCapture(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), 0)
	w.run(t)
	ctx := context.Background()
	order := uuid.NewString()
	w.requestCharge(t, order, "10.00", "pm_card_visa")
	w.waitSettled(t, order)

	ids := make([]string, 10)
	var wg sync.WaitGroup
	for i := range ids {
		ids[i] = uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.db.Transaction(func(tx *gorm.DB) error {
				return w.svc.RecordRefund(ctx, tx, orderevents.RefundRequested{OrderID: order, RefundID: ids[i], Amount: "4", Reason: "damaged"})
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := w.db.Transaction(func(tx *gorm.DB) error {
		return w.svc.RecordRefund(ctx, tx, orderevents.RefundRequested{OrderID: order, RefundID: ids[0], Amount: "4.00"})
	}); err != nil {
		t.Fatal(err)
	}
	var rows []struct {
		Amount string
		Status string
	}
	w.db.Raw(`SELECT amount::text AS amount, status FROM refunds`).Scan(&rows)
	if len(rows) != 2 || rows[0].Amount != "4.00" || rows[1].Amount != "4.00" {
		t.Fatalf("refunds recorded = %+v, want two of 4.00", rows)
	}
	var refunded int64
	testkit.Eventually(t, "the refunds to be carried out", func() bool {
		w.db.Raw(`SELECT count(*) FROM refunds WHERE status = 'succeeded'`).Scan(&refunded)
		return refunded == 2
	})
}
