package orders

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// openOrders creates a database with the orders schema migrated and
// returns a handle acting as the module's role, as the shop does.
func openOrders(tb testing.TB) *gorm.DB {
	tb.Helper()
	files, err := migrations.For("order")
	if err != nil {
		tb.Fatal(err)
	}
	return testkit.ModuleDB(tb, "orders", files, 4)
}

// recorder stands in for the bus: it keeps what was published.
type recorder struct {
	mu     sync.Mutex
	events []bus.Event
}

func (r *recorder) Publish(_ context.Context, _ *gorm.DB, evs ...bus.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, evs...)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// TestApply_AStepComputedForAnEarlierStateWritesNothing: a step computed
// for a state the order has left (as a handler that read it before a
// racing one committed would compute) is not written, even when the
// status is still the same: the UPDATE compares the whole state. The
// order here is cancelled and its late charge refunded; a step computed
// while it was cancelled with the charge under way would ask for the
// refund again and move payment_state back to refund_requested.
func TestApply_AStepComputedForAnEarlierStateWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pub := &recorder{}
	s := NewService(openOrders(t), pub, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	customer := auth.Identity{UserID: uuid.NewString()}
	product := uuid.NewString()
	placed, err := s.Place(ctx, customer, PlaceOrder{Items: []OrderLine{{ProductID: product, Quantity: 2}}, PaymentMethod: "pm_card_visa"}, "")
	if err != nil {
		t.Fatal(err)
	}
	inTx := func(f func(tx *gorm.DB) error) {
		t.Helper()
		if err := s.db.Transaction(f); err != nil {
			t.Fatal(err)
		}
	}
	inTx(func(tx *gorm.DB) error {
		return s.OnStockReserved(ctx, tx, productevents.StockReserved{OrderID: placed.ID, ExpiresAt: time.Now().Add(time.Minute),
			Lines: []productevents.ReservedLine{{ProductID: product, Name: "Pen", UnitPrice: "2.50", Quantity: 2}}})
	})
	if _, err := s.Cancel(ctx, customer, placed.ID); err != nil {
		t.Fatal(err)
	}
	inTx(func(tx *gorm.DB) error {
		return s.OnPaymentSucceeded(ctx, tx, paymentevents.PaymentSucceeded{OrderID: placed.ID, PaymentID: uuid.NewString(), Amount: "5.00"})
	})
	inTx(func(tx *gorm.DB) error {
		return s.OnPaymentRefunded(ctx, tx, paymentevents.PaymentRefunded{OrderID: placed.ID, Amount: "5.00"})
	})
	before, err := s.Get(ctx, customer, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before.Status != Cancelled || before.PaymentState != Refunded {
		t.Fatalf("order %s/%s, want cancelled/refunded", before.Status, before.PaymentState)
	}
	published := pub.count()

	stale := State{Cancelled, ChargeRequested}
	tr, err := Next(stale, PaymentSucceeded)
	if err != nil || tr.To != (State{Cancelled, RefundRequested}) {
		t.Fatalf("Next(%v, payment_succeeded) = %+v, %v", stale, tr, err)
	}
	err = s.db.Transaction(func(tx *gorm.DB) error {
		return s.apply(ctx, tx, placed.ID, stale, tr, string(PaymentSucceeded), uuid.NewString(), effect{detail: "charged 5.00"}, nil)
	})
	if !errors.Is(err, errMovedOn) {
		t.Fatalf("a step for a state the order has left: %v, want errMovedOn", err)
	}
	// And the same event arriving again under a new message id.
	inTx(func(tx *gorm.DB) error {
		return s.OnPaymentSucceeded(ctx, tx, paymentevents.PaymentSucceeded{OrderID: placed.ID, PaymentID: uuid.NewString(), Amount: "5.00"})
	})

	after, err := s.Get(ctx, customer, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != Cancelled || after.PaymentState != Refunded || len(after.Timeline) != len(before.Timeline) || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("order after stale steps: %s/%s with %d timeline entries (updated %s); want it as it was: %s/%s, %d entries (updated %s)",
			after.Status, after.PaymentState, len(after.Timeline), after.UpdatedAt, before.Status, before.PaymentState, len(before.Timeline), before.UpdatedAt)
	}
	if pub.count() != published {
		t.Fatalf("stale steps published %d events", pub.count()-published)
	}
}

// TestApply_RefusesAStepThatIsNotForward: apply writes only transitions
// that move forward, whatever it is handed, also from the state the order
// is in.
func TestApply_RefusesAStepThatIsNotForward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewService(openOrders(t), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	customer := auth.Identity{UserID: uuid.NewString()}
	product := uuid.NewString()
	placed, err := s.Place(ctx, customer, PlaceOrder{Items: []OrderLine{{ProductID: product, Quantity: 1}}, PaymentMethod: "pm_card_visa"}, "")
	if err != nil {
		t.Fatal(err)
	}
	err = s.db.Transaction(func(tx *gorm.DB) error {
		return s.OnStockReserved(ctx, tx, productevents.StockReserved{OrderID: placed.ID, ExpiresAt: time.Now().Add(time.Minute),
			Lines: []productevents.ReservedLine{{ProductID: product, Name: "Pen", UnitPrice: "2.50", Quantity: 1}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	now := State{AwaitingPayment, ChargeRequested}
	for _, to := range []State{now, {Pending, ChargeRequested}, {AwaitingPayment, NoPayment}, {Pending, NoPayment}} {
		err := s.db.Transaction(func(tx *gorm.DB) error {
			return s.apply(ctx, tx, placed.ID, now, Transition{To: to, Changed: true}, "backwards", "", effect{}, nil)
		})
		if err == nil {
			t.Errorf("apply from %v to %v was written", now, to)
		}
	}
	if o, err := s.Get(ctx, customer, placed.ID); err != nil || o.Status != AwaitingPayment || o.PaymentState != ChargeRequested {
		t.Fatalf("order after refused steps: %+v, %v", o, err)
	}
}
