package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/modshop/modshop/migrations"
	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/events"
	"github.com/modshop/modshop/modules/payment/internal/ledger"
	"github.com/modshop/modshop/modules/payment/internal/provider"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// paymentsDB creates a database with the payment module's schema
// provisioned and migrated, and returns a handle acting as the module's
// role, as the running shop gives the module.
func paymentsDB(t *testing.T) *gorm.DB {
	t.Helper()
	files, err := migrations.For("payment")
	if err != nil {
		t.Fatal(err)
	}
	return testkit.NewModuleDatabase(t, testkit.ModuleSpec{Name: "payment", Schema: "payments", Migrations: files}).DB
}

// recorder stands in for the bus: it keeps what was published.
type recorder struct {
	mu     sync.Mutex
	events []bus.Event
	spans  []trace.SpanContext // the span each event was published in, as the bus would carry it
}

func (r *recorder) Publish(ctx context.Context, _ *gorm.DB, evs ...bus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	for range evs {
		r.spans = append(r.spans, trace.SpanContextFromContext(ctx))
	}
	return nil
}

// publishedIn returns the span the event named name was published in.
func (r *recorder) publishedIn(name string) (trace.SpanContext, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, ev := range r.events {
		if ev.EventName() == name {
			return r.spans[i], true
		}
	}
	return trace.SpanContext{}, false
}

func (r *recorder) all() []bus.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bus.Event(nil), r.events...)
}

// flaky is the test provider with an outage: the next authorizeFailures
// authorizations and captureFailures captures fail as if the provider did
// not answer (a capture only after it went through, as when the answer is
// lost on the way back).
type flaky struct {
	*provider.TestMode
	mu                sync.Mutex
	authorizeFailures int
	captureFailures   int
	refundFailures    int
	// refusals are definite refusals of authorizations, by amount: a
	// provider's own limits.
	refusals map[string]error
}

var errOutage = errors.New("provider outage")

func (f *flaky) fail(n *int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *n > 0 {
		*n--
		return true
	}
	return false
}

func (f *flaky) Authorize(ctx context.Context, r provider.AuthorizeRequest) (string, error) {
	if f.fail(&f.authorizeFailures) {
		return "", errOutage
	}
	if err := f.refusals[r.Amount]; err != nil {
		return "", fmt.Errorf("authorize %s: %w", r.Amount, err)
	}
	return f.TestMode.Authorize(ctx, r)
}

func (f *flaky) Capture(ctx context.Context, r provider.CaptureRequest) (string, error) {
	ref, err := f.TestMode.Capture(ctx, r)
	if err == nil && f.fail(&f.captureFailures) {
		return "", errOutage
	}
	return ref, err
}

func (f *flaky) Refund(ctx context.Context, r provider.RefundRequest) (string, error) {
	if f.fail(&f.refundFailures) {
		return "", errOutage
	}
	return f.TestMode.Refund(ctx, r)
}

// ledgerWorld is a ledger on its own database with a recorder for a bus.
type ledgerWorld struct {
	db       *gorm.DB
	svc      *ledger.Service
	provider *flaky
	books    *provider.MemoryRecords
	events   *recorder
	cfg      ledger.Config
}

func fastConfig() ledger.Config {
	return ledger.Config{ProviderTimeout: time.Second, MaxAttempts: 3, RetryBackoff: 5 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, PollInterval: 50 * time.Millisecond, Concurrency: 4}
}

func newLedger(t *testing.T, cfg ledger.Config, delay time.Duration) *ledgerWorld {
	t.Helper()
	w := &ledgerWorld{db: paymentsDB(t), books: provider.NewMemoryRecords(), events: &recorder{}, cfg: cfg}
	w.provider = &flaky{TestMode: provider.NewTestMode(w.books, delay)}
	w.svc = ledger.NewService(w.db, w.events, w.provider, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	return w
}

// run starts the worker until the test ends (or stop is called).
// waitAccepting waits until the worker started by run takes hand-overs.
func (w *ledgerWorld) waitAccepting(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if w.svc.AcceptsHandOvers() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not start within 15s")
		}
		time.Sleep(time.Millisecond)
	}
}

func (w *ledgerWorld) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.svc.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

func (w *ledgerWorld) requestCharge(t *testing.T, orderID, amount, method string) {
	t.Helper()
	req := orderevents.PaymentRequested{OrderID: orderID, UserID: uuid.NewString(), Amount: amount, PaymentMethod: method, RequestedAt: time.Now()}
	err := w.db.Transaction(func(tx *gorm.DB) error { return w.svc.RecordCharge(context.Background(), tx, req) })
	if err != nil {
		t.Fatal(err)
	}
}

type paymentRow struct {
	ID               string
	Status           string
	Amount           string
	Attempts         int
	FailureReason    *string
	CaptureAttempted bool
}

func (w *ledgerWorld) payment(t *testing.T, orderID string) paymentRow {
	t.Helper()
	var rows []paymentRow
	err := w.db.Raw(`SELECT id, status, amount::text AS amount, attempts, failure_reason, capture_attempted FROM payments WHERE order_id = ?`, orderID).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("%d payments for order %s, want 1", len(rows), orderID)
	}
	return rows[0]
}

// waitSettled waits until the order's payment is captured or failed.
func (w *ledgerWorld) waitSettled(t *testing.T, orderID string) paymentRow {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		p := w.payment(t, orderID)
		if p.Status == "captured" || p.Status == "failed" {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment of order %s still %s after 15s", orderID, p.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *ledgerWorld) captures(t *testing.T) int {
	t.Helper()
	n, err := w.provider.Captures(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func outcomes(evs []bus.Event, orderID string) (succeeded []events.PaymentSucceeded, failed []events.PaymentFailed, refunded []events.PaymentRefunded) {
	for _, ev := range evs {
		switch e := ev.(type) {
		case events.PaymentSucceeded:
			if e.OrderID == orderID {
				succeeded = append(succeeded, e)
			}
		case events.PaymentFailed:
			if e.OrderID == orderID {
				failed = append(failed, e)
			}
		case events.PaymentRefunded:
			if e.OrderID == orderID {
				refunded = append(refunded, e)
			}
		}
	}
	return
}

func TestRecordCharge_OnePaymentPerOrderHoweverOftenRequested(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	order := uuid.NewString()
	w.requestCharge(t, order, "19.9", "pm_card_visa")
	w.requestCharge(t, order, "19.9", "pm_card_visa")
	w.requestCharge(t, order, "25.00", "pm_card_chargeDeclined") // a confused publisher: still the first one counts
	p := w.payment(t, order)
	if p.Status != "pending" || p.Amount != "19.90" || p.Attempts != 0 {
		t.Fatalf("payment = %+v, want one pending payment of 19.90 not yet attempted", p)
	}
	if len(w.events.all()) != 0 {
		t.Fatalf("recording a charge published %v; only the worker publishes outcomes", w.events.all())
	}
	w.run(t)
	if p := w.waitSettled(t, order); p.Status != "captured" || w.captures(t) != 1 {
		t.Fatalf("payment = %+v with %d captures, want captured once", p, w.captures(t))
	}
	if s, f, _ := outcomes(w.events.all(), order); len(s) != 1 || len(f) != 0 || s[0].Amount != "19.90" || s[0].PaymentID != p.ID {
		t.Fatalf("published %d succeeded %+v and %d failed, want one payment.succeeded of 19.90", len(s), s, len(f))
	}
}

func TestRecordCharge_RefusesRequestsThatCannotBeCharged(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	for _, req := range []orderevents.PaymentRequested{
		{OrderID: "not-a-uuid", UserID: uuid.NewString(), Amount: "1.00", PaymentMethod: "pm_card_visa"},
		{OrderID: uuid.NewString(), UserID: uuid.NewString(), Amount: "0", PaymentMethod: "pm_card_visa"},
		{OrderID: uuid.NewString(), UserID: uuid.NewString(), Amount: "12.345", PaymentMethod: "pm_card_visa"},
		{OrderID: uuid.NewString(), UserID: uuid.NewString(), Amount: "100000000.00", PaymentMethod: "pm_card_visa"},
	} {
		err := w.db.Transaction(func(tx *gorm.DB) error { return w.svc.RecordCharge(context.Background(), tx, req) })
		if err == nil {
			t.Errorf("request %+v was recorded; a malformed request must fail (and go to the dead letters)", req)
		}
	}
	// A method that cannot be a method id fails at once, in the handler.
	order := uuid.NewString()
	w.requestCharge(t, order, "5.00", "pm card 'visa'")
	if p := w.payment(t, order); p.Status != "failed" || p.FailureReason == nil || *p.FailureReason != "invalid_method" {
		t.Fatalf("payment with a garbled method = %+v, want failed with invalid_method", p)
	}
	if _, f, _ := outcomes(w.events.all(), order); len(f) != 1 || f[0].Reason != "invalid_method" {
		t.Fatalf("published %+v, want one payment.failed with invalid_method", f)
	}
}

// TestWorker_TakesUpANewChargeWithoutWaitingForThePoll: a charge recorded
// while the worker idles is charged at once, whether the recording
// transaction wakes the worker after its commit (db.Gorm's do) or cannot
// (a plain gorm handle's: the worker is woken before the commit and looks
// again until it finds the row). The poll is an hour away.
func TestWorker_TakesUpANewChargeWithoutWaitingForThePoll(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.PollInterval = time.Hour
	w := newLedger(t, cfg, time.Millisecond)
	sqlDB, err := w.db.DB()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		t.Fatal(err)
	}
	w.run(t)
	first := uuid.NewString()
	w.requestCharge(t, first, "1.00", "pm_card_visa")
	w.waitSettled(t, first) // the worker has looked and idles now
	for _, c := range []struct {
		name string
		db   *gorm.DB
	}{{"after commit", w.db}, {"plain transaction", plain}, {"after commit again", w.db}} {
		order := uuid.NewString()
		req := orderevents.PaymentRequested{OrderID: order, UserID: uuid.NewString(), Amount: "6.00", PaymentMethod: "pm_card_visa", RequestedAt: time.Now()}
		if err := c.db.Transaction(func(tx *gorm.DB) error { return w.svc.RecordCharge(context.Background(), tx, req) }); err != nil {
			t.Fatal(err)
		}
		if p := w.waitSettled(t, order); p.Status != "captured" || p.Attempts != 1 {
			t.Fatalf("%s: payment %+v, want captured at the first attempt", c.name, p)
		}
	}
}

func TestWorker_DeclinedAndUnknownMethodsFailWithTheirReason(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	w.run(t)
	for method, reason := range map[string]string{"pm_card_chargeDeclined": "declined", "pm_card_mastercard": "invalid_method"} {
		order := uuid.NewString()
		w.requestCharge(t, order, "8.00", method)
		p := w.waitSettled(t, order)
		if p.Status != "failed" || *p.FailureReason != reason || p.Attempts != 1 {
			t.Errorf("%s: payment %+v, want failed (%s) after one attempt", method, p, reason)
		}
		if s, f, _ := outcomes(w.events.all(), order); len(s) != 0 || len(f) != 1 || f[0].Reason != reason {
			t.Errorf("%s: published succeeded %v, failed %v; want one payment.failed (%s)", method, s, f, reason)
		}
	}
	if w.captures(t) != 0 {
		t.Fatalf("%d captures", w.captures(t))
	}
}

// TestWorker_ProviderRefusalsFailAtOnceWithTheirReason: a provider that
// refuses a charge for good (an amount above its limit, a request it can
// never accept) has answered: the payment fails at once with the reason,
// a business outcome the order acts on, instead of being retried as if
// the provider had not answered and failing minutes later as
// provider_unavailable.
func TestWorker_ProviderRefusalsFailAtOnceWithTheirReason(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	w.provider.refusals = map[string]error{"1000000.00": provider.ErrAmountTooLarge, "1000001.00": provider.ErrRejected}
	w.run(t)
	for amount, reason := range map[string]string{"1000000.00": "amount_too_large", "1000001.00": "rejected"} {
		order := uuid.NewString()
		w.requestCharge(t, order, amount, "pm_card_visa")
		p := w.waitSettled(t, order)
		if p.Status != "failed" || p.FailureReason == nil || *p.FailureReason != reason || p.Attempts != 1 {
			t.Errorf("%s refused: payment %+v, want failed (%s) after one attempt", amount, p, reason)
		}
		if s, f, _ := outcomes(w.events.all(), order); len(s) != 0 || len(f) != 1 || f[0].Reason != reason {
			t.Errorf("%s refused: published succeeded %v, failed %v; want one payment.failed (%s)", amount, s, f, reason)
		}
	}
}

func TestWorker_RetriesProviderErrorsWithBackoffThenCaptures(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.MaxAttempts = 5
	w := newLedger(t, cfg, time.Millisecond)
	w.provider.authorizeFailures = 2
	w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "30.00", "pm_card_visa")
	p := w.waitSettled(t, order)
	if p.Status != "captured" || p.Attempts != 3 || w.captures(t) != 1 {
		t.Fatalf("payment %+v with %d captures; want captured on the third attempt, once", p, w.captures(t))
	}
}

func TestWorker_FailsAsProviderUnavailableAfterTheLastAttempt(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	w.provider.authorizeFailures = 1000
	w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "30.00", "pm_card_visa")
	p := w.waitSettled(t, order)
	if p.Status != "failed" || *p.FailureReason != "provider_unavailable" || p.Attempts != w.cfg.MaxAttempts {
		t.Fatalf("payment %+v, want failed as provider_unavailable after %d attempts", p, w.cfg.MaxAttempts)
	}
	if _, f, _ := outcomes(w.events.all(), order); len(f) != 1 || f[0].Reason != "provider_unavailable" {
		t.Fatalf("published %+v, want one payment.failed (provider_unavailable)", f)
	}
}

func TestWorker_ProviderCallsTimeOut(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ProviderTimeout = 30 * time.Millisecond
	w := newLedger(t, cfg, time.Hour) // pm_card_delayed never answers in time
	w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "2.00", "pm_card_delayed")
	if p := w.waitSettled(t, order); p.Status != "failed" || *p.FailureReason != "provider_unavailable" {
		t.Fatalf("payment %+v, want failed as provider_unavailable", p)
	}
}

// TestWorker_NeverReportsFailureOnceACaptureMayHaveRun: the provider
// captures but the answer is lost, more often than MaxAttempts. Reporting
// the payment failed would cancel an order whose money was taken; instead
// it is retried with the same key until the provider answers, and the
// provider captured once.
func TestWorker_NeverReportsFailureOnceACaptureMayHaveRun(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	w.provider.captureFailures = w.cfg.MaxAttempts + 2
	w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "99.99", "pm_card_visa")
	p := w.waitSettled(t, order)
	if p.Status != "captured" || p.Attempts != w.cfg.MaxAttempts+3 || !p.CaptureAttempted || w.captures(t) != 1 {
		t.Fatalf("payment %+v with %d captures; want captured once after %d attempts", p, w.captures(t), w.cfg.MaxAttempts+3)
	}
	if s, f, _ := outcomes(w.events.all(), order); len(s) != 1 || len(f) != 0 {
		t.Fatalf("published %d succeeded, %d failed; want one payment.succeeded and no failure", len(s), len(f))
	}
}

// TestWorker_RetriesAStuckClaimWithTheSameKeyWithoutChargingTwice: a worker
// claimed a payment, the provider captured it, and the worker crashed
// before recording that. After the lease the row is claimed again and the
// provider, asked with the same key, answers without capturing again.
func TestWorker_RetriesAStuckClaimWithTheSameKeyWithoutChargingTwice(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	order := uuid.NewString()
	w.requestCharge(t, order, "42.00", "pm_card_visa")
	p := w.payment(t, order)
	ctx := context.Background()
	auth, err := w.provider.Authorize(ctx, provider.AuthorizeRequest{IdempotencyKey: p.ID, Method: "pm_card_visa", Amount: "42.00"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.provider.Capture(ctx, provider.CaptureRequest{IdempotencyKey: p.ID, Authorization: auth, Amount: "42.00"}); err != nil {
		t.Fatal(err)
	}
	if err := w.db.Exec(`UPDATE payments SET status = 'processing', attempts = 1, claimed_at = now() - interval '1 hour' WHERE id = ?`, p.ID).Error; err != nil {
		t.Fatal(err)
	}
	w.run(t)
	got := w.waitSettled(t, order)
	if got.Status != "captured" || got.Attempts != 2 || !got.CaptureAttempted || w.captures(t) != 1 {
		t.Fatalf("payment %+v with %d captures, want captured on the second attempt and one capture", got, w.captures(t))
	}
	if s, _, _ := outcomes(w.events.all(), order); len(s) != 1 {
		t.Fatalf("published %d payment.succeeded, want 1", len(s))
	}
}

// TestWorker_StoppingGivesTheClaimBack: a worker stopped during a provider
// call puts the payment back as pending, the attempt not counted, so that
// the next start takes it up at once instead of after the lease.
func TestWorker_StoppingGivesTheClaimBack(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ProviderTimeout = time.Minute
	w := newLedger(t, cfg, time.Hour)
	stop := w.run(t)
	order := uuid.NewString()
	w.requestCharge(t, order, "3.00", "pm_card_delayed")
	deadline := time.Now().Add(10 * time.Second)
	for w.payment(t, order).Status != "processing" {
		if time.Now().After(deadline) {
			t.Fatal("the worker never claimed the payment")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if p := w.payment(t, order); p.Status != "pending" || p.Attempts != 0 || p.CaptureAttempted {
		t.Fatalf("payment after stop = %+v, want pending, no attempt counted", p)
	}
	if len(w.events.all()) != 0 {
		t.Fatalf("published %v while stopping", w.events.all())
	}
}

func TestRefund_RefundsTheCapturedPaymentOnceThroughOutages(t *testing.T) {
	t.Parallel()
	w := newLedger(t, fastConfig(), time.Millisecond)
	w.provider.refundFailures = w.cfg.MaxAttempts + 1 // refunds are never given up on
	w.run(t)
	ctx := context.Background()
	refund := func(orderID string) error {
		return w.db.Transaction(func(tx *gorm.DB) error {
			return w.svc.RecordRefund(ctx, tx, orderevents.RefundRequested{OrderID: orderID, Reason: "cancelled"})
		})
	}

	// Nothing captured: nothing to refund.
	declined := uuid.NewString()
	w.requestCharge(t, declined, "4.00", "pm_card_chargeDeclined")
	w.waitSettled(t, declined)
	for _, order := range []string{declined, uuid.NewString()} {
		if err := refund(order); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	w.db.Raw(`SELECT count(*) FROM refunds`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d refunds recorded for orders without a captured payment", n)
	}

	order := uuid.NewString()
	w.requestCharge(t, order, "15.00", "pm_card_visa")
	p := w.waitSettled(t, order)
	for range 3 {
		if err := refund(order); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		var settled int64
		w.db.Raw(`SELECT count(*) FROM refunds WHERE status IN ('succeeded', 'failed')`).Scan(&settled)
		if settled > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the refund did not settle within 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var refunds []struct {
		Status   string
		Amount   string
		Attempts int
	}
	w.db.Raw(`SELECT status, amount::text AS amount, attempts FROM refunds WHERE payment_id = ?`, p.ID).Scan(&refunds)
	if len(refunds) != 1 || refunds[0].Status != "succeeded" || refunds[0].Amount != "15.00" || refunds[0].Attempts != w.cfg.MaxAttempts+2 {
		t.Fatalf("refunds = %+v, want one succeeded refund of 15.00 after %d attempts", refunds, w.cfg.MaxAttempts+2)
	}
	if _, _, r := outcomes(w.events.all(), order); len(r) != 1 || r[0].Amount != "15.00" || r[0].PaymentID != p.ID {
		t.Fatalf("published %+v, want one payment.refunded of 15.00", r)
	}
	if n, _ := w.provider.Refunds(ctx); n != 1 {
		t.Fatalf("the provider refunded %d times, want 1", n)
	}
}

// TestWorker_ACommittedChargeIsClaimedInTheHandlersTransaction: while the
// worker runs, a charge recorded in a transaction that runs code after its
// commit is written already claimed for it (ADR 0039: no commit of the
// worker's own claim), handed over on commit and captured at its first
// attempt though the worker never polls; a plain transaction still
// records it pending for the worker to claim.
func TestWorker_ACommittedChargeIsClaimedInTheHandlersTransaction(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.PollInterval = time.Hour
	w := newLedger(t, cfg, time.Millisecond)
	w.run(t)
	w.waitAccepting(t) // Run starts in a goroutine of its own
	order := uuid.NewString()
	req := orderevents.PaymentRequested{OrderID: order, UserID: uuid.NewString(), Amount: "4.00", PaymentMethod: "pm_card_visa", RequestedAt: time.Now()}
	var inTx paymentRow
	err := w.db.Transaction(func(tx *gorm.DB) error {
		if err := w.svc.RecordCharge(context.Background(), tx, req); err != nil {
			return err
		}
		return tx.Raw(`SELECT id, status, amount::text AS amount, attempts, failure_reason, capture_attempted FROM payments WHERE order_id = ?`, order).Scan(&inTx).Error
	})
	if err != nil {
		t.Fatal(err)
	}
	if inTx.Status != "processing" || inTx.Attempts != 1 || inTx.CaptureAttempted {
		t.Fatalf("payment in the handler's transaction = %+v, want processing, attempt 1, no capture attempted", inTx)
	}
	if p := w.waitSettled(t, order); p.Status != "captured" || p.Attempts != 1 {
		t.Fatalf("payment %+v, want captured at the first attempt", p)
	}
}

// TestWorker_StoppingGivesBackHandedClaimsNotStarted: a claim handed over
// while every slot is busy waits for one; when the worker stops first, it
// is given back like the job in flight, no attempt counted.
func TestWorker_StoppingGivesBackHandedClaimsNotStarted(t *testing.T) {
	t.Parallel()
	cfg := fastConfig()
	cfg.ProviderTimeout = time.Minute
	cfg.Concurrency = 1
	w := newLedger(t, cfg, time.Hour)
	stop := w.run(t)
	w.waitAccepting(t)
	busy, waiting := uuid.NewString(), uuid.NewString()
	w.requestCharge(t, busy, "3.00", "pm_card_delayed")
	w.requestCharge(t, waiting, "2.00", "pm_card_delayed")
	if p := w.payment(t, waiting); p.Status != "processing" || p.Attempts != 1 {
		t.Fatalf("handed claim before stop = %+v, want processing, attempt 1", p)
	}
	stop()
	for _, order := range []string{busy, waiting} {
		if p := w.payment(t, order); p.Status != "pending" || p.Attempts != 0 || p.CaptureAttempted {
			t.Errorf("payment of %s after stop = %+v, want pending, no attempt counted", order, p)
		}
	}
	if len(w.events.all()) != 0 {
		t.Fatalf("published %v while stopping", w.events.all())
	}
}
