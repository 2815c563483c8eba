package ledger

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/modules/payment/internal/provider"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// The life of a payment or refund row, as the statements in charge.go,
// refund.go, request_charge.go and request_refund.go make it: the table
// is the specification, kept beside the test that holds the statements
// to it, because the statements are the code.

// status is where a payment or a refund stands. A row is recorded pending;
// the worker's claim makes it processing, and a retry or a stop hands it
// back as pending: bookkeeping of who works on it, not progress. The
// provider's answer settles it in a final status (captured or succeeded,
// or failed), which nothing changes any more.
type status string

const (
	pending    status = "pending"
	processing status = "processing"
	captured   status = "captured"  // a payment: the money was taken
	succeeded  status = "succeeded" // a refund: the money was given back
	failed     status = "failed"
)

// final reports whether the row is settled for good.
func (s status) final() bool { return s == captured || s == succeeded || s == failed }

// step is something that happens to a payment or refund row.
type step string

const (
	request step = "request" // the order asks (again): a row is recorded if there is none
	claim   step = "claim"   // the worker takes a row that is due, or whose claim outlived its lease
	settle  step = "settle"  // the provider did it
	refuse  step = "refuse"  // the provider said no for good
	retry   step = "retry"   // the provider did not answer: again later
	release step = "release" // the worker stops: the claim goes back
)

var steps = []step{request, claim, settle, refuse, retry, release}

// lifecycle is the life of one kind of row: payments settle as captured,
// refunds as succeeded.
type lifecycle struct{ done status }

var (
	paymentLife = lifecycle{done: captured}
	refundLife  = lifecycle{done: succeeded}
)

// statuses are the statuses a row of this kind can have.
func (l lifecycle) statuses() []status { return []status{pending, processing, l.done, failed} }

// next is the status a step moves a row in status from to; ok is false
// when the step does not apply there and the row stays as it is. A final
// row never moves; a request finds a row already there and records
// nothing (a refund that failed makes room for a new refund row, but
// stays failed itself). The statements that make each step say the same
// in their WHERE (status = 'pending' to claim, 'processing' to settle,
// refuse, retry or release; ON CONFLICT to record), and
// TestLifecycle_TheStatementsDoWhatTheTableSays holds them to it.
func (l lifecycle) next(from status, st step) (to status, ok bool) {
	switch {
	case st == claim && (from == pending || from == processing):
		return processing, true
	case st == settle && from == processing:
		return l.done, true
	case st == refuse && from == processing:
		return failed, true
	case (st == retry || st == release) && from == processing:
		return pending, true
	}
	return from, false
}

// moves are the only steps that move a row, for a kind whose rows settle
// as done; every other step in every status leaves the row as it is.
func moves(done status) map[status]map[step]status {
	return map[status]map[step]status{
		pending:    {claim: processing},
		processing: {claim: processing, settle: done, refuse: failed, retry: pending, release: pending},
	}
}

// TestLifecycle_EveryStatusTimesEveryStep: in every status, every step
// does what the table says, and no step moves a final row or brings a
// row back from a final status.
func TestLifecycle_EveryStatusTimesEveryStep(t *testing.T) {
	t.Parallel()
	for _, l := range []lifecycle{paymentLife, refundLife} {
		table := moves(l.done)
		for _, from := range l.statuses() {
			for _, st := range steps {
				want, wantOK := table[from][st]
				if !wantOK {
					want = from
				}
				to, ok := l.next(from, st)
				if to != want || ok != wantOK {
					t.Errorf("%s: next(%s, %s) = %s, %v; want %s, %v", l.done, from, st, to, ok, want, wantOK)
				}
				if from.final() && to != from {
					t.Errorf("%s: %s moves a final %s row to %s", l.done, st, from, to)
				}
			}
		}
	}
}

// nopPublisher takes what the statements publish.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, *gorm.DB, ...bus.Event) error { return nil }

// TestLifecycle_TheStatementsDoWhatTheTableSays runs the statement of every
// step on a row in every status, in PostgreSQL: the row ends in the status
// next says, and a step that does not apply changes nothing in the row.
// Rows in flight are due and their claims have outlived the lease, so that
// a claim takes them; a settle comes with the row's current claim.
func TestLifecycle_TheStatementsDoWhatTheTableSays(t *testing.T) {
	t.Parallel()
	gdb := paymentsDB(t)
	s := NewService(gdb, nopPublisher{}, provider.NewTestMode(provider.NewMemoryRecords(), time.Millisecond),
		slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	ctx := context.Background()
	cause := errors.New("the provider said so")
	exec := func(sql string, args ...any) {
		t.Helper()
		if err := gdb.Exec(sql, args...).Error; err != nil {
			t.Fatal(err)
		}
	}
	snapshot := func(table, id string) (st status, row string) {
		t.Helper()
		var r struct {
			Status status
			Row    string
		}
		if err := gdb.Raw(`SELECT status, row_to_json(t)::text AS row FROM `+table+` t WHERE id = ?`, id).Scan(&r).Error; err != nil {
			t.Fatal(err)
		}
		return r.Status, r.Row
	}
	// rowIn writes one row of the kind in status from (and, for a refund,
	// its captured payment) and returns its id.
	rowIn := func(l lifecycle, from status) (id, paymentID, orderID string) {
		t.Helper()
		exec(`DELETE FROM refunds`)
		exec(`DELETE FROM payments`)
		orderID, paymentID = uuid.NewString(), uuid.NewString()
		payStatus := captured
		if l == paymentLife {
			payStatus = from
		}
		exec(`INSERT INTO payments (id, order_id, user_id, amount, method, status, idempotency_key, attempts, next_attempt_at,
				claimed_at, provider_capture, captured_at, failure_reason, failed_at)
			VALUES (?, ?, ?, 5.00, 'pm_card_visa', ?, 'key', 1, now() - interval '1 minute',
				CASE WHEN ?::text = 'processing' THEN now() - interval '1 hour' END,
				CASE WHEN ?::text = 'captured' THEN 'cap_1' END, CASE WHEN ?::text = 'captured' THEN now() END,
				CASE WHEN ?::text = 'failed' THEN 'declined' END, CASE WHEN ?::text = 'failed' THEN now() END)`,
			paymentID, orderID, uuid.NewString(), payStatus, payStatus, payStatus, payStatus, payStatus, payStatus)
		if l == paymentLife {
			return paymentID, paymentID, orderID
		}
		id = uuid.NewString()
		exec(`INSERT INTO refunds (id, payment_id, amount, status, idempotency_key, attempts, next_attempt_at,
				claimed_at, provider_refund, refunded_at, failure_reason, failed_at)
			VALUES (?, ?, 5.00, ?, 'key', 1, now() - interval '1 minute',
				CASE WHEN ?::text = 'processing' THEN now() - interval '1 hour' END,
				CASE WHEN ?::text = 'succeeded' THEN 're_1' END, CASE WHEN ?::text = 'succeeded' THEN now() END,
				CASE WHEN ?::text = 'failed' THEN 'rejected' END, CASE WHEN ?::text = 'failed' THEN now() END)`,
			id, paymentID, from, from, from, from, from, from)
		return id, paymentID, orderID
	}
	// run makes step st on the row and reports whether it took the row.
	run := func(l lifecycle, st step, id, paymentID, orderID string) bool {
		t.Helper()
		inTx := func(f func(tx *gorm.DB) error) {
			t.Helper()
			if err := gdb.Transaction(f); err != nil {
				t.Fatal(err)
			}
		}
		held := func(err error) bool {
			t.Helper()
			if err != nil && !errors.Is(err, errClaimLost) {
				t.Fatal(err)
			}
			return err == nil
		}
		if l == paymentLife {
			p := claimedPayment{ID: id, OrderID: orderID, Amount: "5.00", Method: "pm_card_visa", IdempotencyKey: "key", Attempts: 1}
			switch st {
			case request:
				inTx(func(tx *gorm.DB) error {
					return s.RecordCharge(ctx, tx, orderevents.PaymentRequested{OrderID: orderID, UserID: uuid.NewString(), Amount: "7.00", PaymentMethod: "pm_card_visa"})
				})
				return false // the row as it was is what is compared
			case claim:
				claimed, err := s.claimPayments(ctx, 10)
				if err != nil {
					t.Fatal(err)
				}
				return len(claimed) == 1 && claimed[0].ID == id
			case settle:
				return held(s.settleCaptured(ctx, p, "auth_1", "cap_2"))
			case refuse:
				return held(s.settleFailed(ctx, p, "declined", cause))
			case retry:
				return held(s.retryPayment(ctx, p, "", cause))
			case release:
				return held(s.releasePayment(ctx, p, ""))
			}
		}
		r := claimedRefund{ID: id, PaymentID: paymentID, OrderID: orderID, Amount: "5.00", IdempotencyKey: "key", Attempts: 1, Capture: "cap_1"}
		switch st {
		case request:
			inTx(func(tx *gorm.DB) error {
				return s.RecordRefund(ctx, tx, orderevents.RefundRequested{OrderID: orderID, Reason: "again"})
			})
			return false
		case claim:
			claimed, err := s.claimRefunds(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			return len(claimed) == 1 && claimed[0].ID == id
		case settle:
			return held(s.settleRefunded(ctx, r, "re_2"))
		case refuse:
			return held(s.settleRefundFailed(ctx, r, cause))
		case retry:
			return held(s.retryRefund(ctx, r, time.Millisecond, cause))
		case release:
			return held(s.releaseRefund(ctx, r))
		}
		t.Fatalf("no statement for %s", st)
		return false
	}

	for _, l := range []lifecycle{paymentLife, refundLife} {
		table := "payments"
		if l == refundLife {
			table = "refunds"
		}
		for _, from := range l.statuses() {
			for _, st := range steps {
				want, wantOK := l.next(from, st)
				id, paymentID, orderID := rowIn(l, from)
				_, before := snapshot(table, id)
				ok := run(l, st, id, paymentID, orderID)
				got, after := snapshot(table, id)
				if got != want || ok != wantOK {
					t.Errorf("%s %s in %s: now %s (took it: %v); want %s (%v)", table, st, from, got, ok, want, wantOK)
				}
				if !wantOK && after != before {
					t.Errorf("%s %s in %s changed the row:\n  before %s\n  after  %s", table, st, from, before, after)
				}
			}
		}
	}
}

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
