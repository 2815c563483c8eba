package orders

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	paymentevents "github.com/modshop/modshop/modules/payment/events"
	productevents "github.com/modshop/modshop/modules/product/events"
	"github.com/modshop/modshop/platform/auth"
)

// TestSaga_AConfirmedOrderEndsWithAConfirmedStep: the charge's step is
// followed by a "confirmed" one, written once, also when the charge's
// event arrives again; an order that does not get confirmed has none.
func TestSaga_AConfirmedOrderEndsWithAConfirmedStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := NewService(openOrders(t), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	customer := auth.Identity{UserID: uuid.NewString()}
	product := uuid.NewString()
	inTx := func(f func(tx *gorm.DB) error) {
		t.Helper()
		if err := s.db.Transaction(f); err != nil {
			t.Fatal(err)
		}
	}
	steps := func(id string) []string {
		t.Helper()
		o, err := s.Get(ctx, customer, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range o.Timeline {
			out = append(out, e.Step)
		}
		return out
	}
	place := func() string {
		t.Helper()
		o, err := s.Place(ctx, customer, PlaceOrder{Items: []OrderLine{{ProductID: product, Quantity: 2}}, PaymentMethod: "pm_card_visa"}, "")
		if err != nil {
			t.Fatal(err)
		}
		inTx(func(tx *gorm.DB) error {
			return s.OnStockReserved(ctx, tx, productevents.StockReserved{OrderID: o.ID, ExpiresAt: time.Now().Add(time.Minute),
				Lines: []productevents.ReservedLine{{ProductID: product, Name: "Pen", UnitPrice: "2.50", Quantity: 2}}})
		})
		return o.ID
	}

	confirmed := place()
	for range 2 { // the second is a copy of the event under a new message id
		inTx(func(tx *gorm.DB) error {
			return s.OnPaymentSucceeded(ctx, tx, paymentevents.PaymentSucceeded{OrderID: confirmed, PaymentID: uuid.NewString(), Amount: "5.00"})
		})
	}
	want := []string{"placed", "stock_reserved", "payment_requested", "payment_succeeded", "confirmed"}
	if got := steps(confirmed); !slices.Equal(got, want) {
		t.Errorf("timeline of a confirmed order: %q, want %q", got, want)
	}

	declined := place()
	inTx(func(tx *gorm.DB) error {
		return s.OnPaymentFailed(ctx, tx, paymentevents.PaymentFailed{OrderID: declined, PaymentID: uuid.NewString(), Reason: "declined"})
	})
	if got := steps(declined); slices.Contains(got, "confirmed") {
		t.Errorf("timeline of a cancelled order: %q, has a confirmed step", got)
	}
}
