package ledger_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/payment/internal/ledger"
)

// TestWorker_TwoReplicasChargeEachPaymentOnce: every replica of the shop
// runs the payment worker on the same payments table. Two workers (two
// processes: services of their own, one provider, one database) take up
// the same burst of charges: each payment is claimed once (one attempt:
// the claim takes only 'pending' rows, skipping those another worker has
// locked), captured once at the provider and reported once.
func TestWorker_TwoReplicasChargeEachPaymentOnce(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), 0)
	second := ledger.NewService(w.db, w.events, w.provider, slog.New(slog.NewTextHandler(io.Discard, nil)), w.cfg)

	const payments = 40
	orders := make([]string, payments)
	for i := range orders {
		orders[i] = uuid.NewString()
		w.requestCharge(t, orders[i], fmt.Sprintf("%d.50", 10+i), "pm_card_visa")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, svc := range []*ledger.Service{w.svc, second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			svc.Run(ctx)
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	for _, o := range orders {
		p := w.waitSettled(t, o)
		if p.Status != "captured" || p.Attempts != 1 {
			t.Errorf("payment of %s: %s after %d attempts, want captured after one", o, p.Status, p.Attempts)
		}
		succeeded, failed, _ := outcomes(w.events.all(), o)
		if len(succeeded) != 1 || len(failed) != 0 {
			t.Errorf("order %s: %d payment.succeeded and %d payment.failed, want one succeeded", o, len(succeeded), len(failed))
		}
	}
	if n := w.captures(t); n != payments {
		t.Errorf("%d captures at the provider, want %d", n, payments)
	}
}
