package orders

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/auth"
)

// TestGet_AnOrderIsReadFromOneMoment: a step committing while an order is
// being read (after its lines, before its timeline) is not in that answer,
// neither in GET /orders/{id}'s nor in the list's: the order, its lines,
// timeline and refunds come from one snapshot. Read one statement at a
// time, the answer showed the new step beside the order row from before it
// (a refund beside lines that did not count it yet, say). The next read
// shows the step.
func TestGet_AnOrderIsReadFromOneMoment(t *testing.T) {
	ctx := context.Background()
	s := NewService(openOrders(t), &recorder{}, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{})
	customer := auth.Identity{UserID: uuid.NewString()}
	placed, err := s.Place(ctx, customer, PlaceOrder{Items: []OrderLine{{ProductID: uuid.NewString(), Quantity: 1}}, PaymentMethod: "pm_card_visa"}, "")
	if err != nil {
		t.Fatal(err)
	}
	const step = "test_between_reads"
	steps := func(o Order) int {
		return len(slices.DeleteFunc(slices.Clone(o.Timeline), func(e TimeEntry) bool { return e.Step != step }))
	}
	// Each read gets a step of its own committed between its two reads.
	writeBetween := func(ids []string) {
		if !slices.Contains(ids, placed.ID) {
			return
		}
		if err := s.db.Exec(`INSERT INTO order_timeline (order_id, step, detail) VALUES (?, ?, 'committed between two reads')`, placed.ID, step).Error; err != nil {
			t.Error(err)
		}
	}
	betweenReads.Store(&writeBetween)
	t.Cleanup(func() { betweenReads.Store(nil) })

	got, err := s.Get(ctx, customer, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if steps(got) != 0 {
		t.Errorf("GET /orders/{id} shows a step committed after its first read: %+v", got.Timeline)
	}
	page, err := s.List(ctx, customer, "", "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].ID != placed.ID {
		t.Fatalf("the list has %d orders, want the one placed", len(page.Items))
	}
	if n := steps(page.Items[0]); n != 1 { // the step committed during Get, not the list's own
		t.Errorf("the order list shows %d steps of the test, want the one committed before it began: %+v", n, page.Items[0].Timeline)
	}

	betweenReads.Store(nil)
	again, err := s.Get(ctx, customer, placed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := steps(again); n != 2 {
		t.Errorf("the next read shows %d of the two steps committed, want both", n)
	}
}
