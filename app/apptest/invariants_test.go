package apptest

import (
	"database/sql"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/testkit"
)

// craft writes rows as the superuser with triggers off, as a defect in
// the code (or a hand in the database) could leave them.
func craft(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, s := range append([]string{`SET LOCAL session_replication_role = replica`}, stmts...) {
		if _, err := tx.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// paidOrder is the SQL of a confirmed order of total 10.00 with its
// captured payment, refunded refunded on the order's side.
func paidOrder(order, payment, refunded string) []string {
	return []string{
		`INSERT INTO orders.orders (id, user_id, status, total_amount, payment_method, payment_state, refunded_amount)
		 VALUES ('` + order + `', gen_random_uuid(), 'confirmed', 10.00, 'pm_card_visa', 'captured', ` + refunded + `)`,
		`INSERT INTO payments.payments (id, order_id, user_id, amount, method, status, idempotency_key, provider_capture, captured_at)
		 VALUES ('` + payment + `', '` + order + `', gen_random_uuid(), 10.00, 'pm_card_visa', 'captured', 'k', 'cap', now())`,
	}
}

func refundRow(payment, amount, status string) string {
	done := "NULL, NULL"
	if status == "succeeded" {
		done = "'re', now()"
	}
	return `INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key, provider_refund, refunded_at)
		VALUES (gen_random_uuid(), '` + payment + `', ` + amount + `, '` + status + `', 'k', ` + done + `)`
}

// TestInvariants_RefundAndReturnRulesCatchCraftedViolations: each new
// rule of the checker reports a row crafted to break it, naming the row;
// a confirmed order refunded in part, consistently, breaks none of the
// payment and refund rules (the checker used to say a confirmed order has
// no refund).
func TestInvariants_RefundAndReturnRulesCatchCraftedViolations(t *testing.T) {
	shop := Start(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	_, admin := shop.Admin(t)
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "INV-1", "name": "Checked mug", "price": "5.00", "stock": 5}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	}
	var product struct{ ID string }
	r.Decode(t, &product)

	over, overPay := uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(over, overPay, "0"), refundRow(overPay, "6.00", "pending"), refundRow(overPay, "6.00", "pending"))...)
	disagrees, disagreesPay := uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(disagrees, disagreesPay, "0"), refundRow(disagreesPay, "5.00", "succeeded"))...)
	unsettled, unsettledPay := uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(unsettled, unsettledPay, "0"),
		`INSERT INTO orders.order_refunds (id, order_id, amount, status) VALUES (gen_random_uuid(), '`+unsettled+`', 3.00, 'requested')`)...)
	returned, returnID := uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(returned, uuid.NewString(), "0"),
		`INSERT INTO orders.order_returns (id, order_id) VALUES ('`+returnID+`', '`+returned+`')`,
		`INSERT INTO orders.order_return_lines (return_id, product_id, quantity) VALUES ('`+returnID+`', '`+product.ID+`', 2)`)...)
	unsold := uuid.NewString()
	craft(t, db, `INSERT INTO products.stock_movements (product_id, kind, delta, order_id, return_id)
		VALUES ('`+product.ID+`', 'return', 1, '`+unsold+`', gen_random_uuid())`)
	// A refund the provider refused: failed on both sides is fine; failed
	// on the order's side only is not.
	failedHalf, failedHalfPay, failedHalfRefund := uuid.NewString(), uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(failedHalf, failedHalfPay, "0"),
		`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key)
		 VALUES ('`+failedHalfRefund+`', '`+failedHalfPay+`', 2.00, 'pending', 'k')`,
		`INSERT INTO orders.order_refunds (id, order_id, amount, status, failed_at, failure_reason)
		 VALUES ('`+failedHalfRefund+`', '`+failedHalf+`', 2.00, 'failed', now(), 'rejected')`)...)
	fine, finePay, fineRefund, fineRefused := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	craft(t, db, append(paidOrder(fine, finePay, "4.00"),
		`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key, failure_reason, failed_at)
		 VALUES ('`+fineRefused+`', '`+finePay+`', 6.00, 'failed', 'k', 'rejected', now())`,
		`INSERT INTO orders.order_refunds (id, order_id, amount, status, failed_at, failure_reason)
		 VALUES ('`+fineRefused+`', '`+fine+`', 6.00, 'failed', now(), 'rejected')`,
		`INSERT INTO payments.refunds (id, payment_id, amount, status, idempotency_key, provider_refund, refunded_at)
		 VALUES ('`+fineRefund+`', '`+finePay+`', 4.00, 'succeeded', 'k', 're', now())`,
		`INSERT INTO orders.order_refunds (id, order_id, amount, status, idempotency_key, refunded_at)
		 VALUES ('`+fineRefund+`', '`+fine+`', 4.00, 'succeeded', 'k', now())`)...)

	violations := invariantViolations(t, db)
	reported := func(rule, id string) bool {
		for _, v := range violations {
			if strings.HasPrefix(v, rule+":") && strings.Contains(v, id) {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ rule, id string }{
		{"refunds exceed a payment's capture", overPay},
		{"an order's refunded amount disagrees with its payment's succeeded refunds", disagrees},
		{"a refund the order asked for or heard of is not settled as the payment's refund", unsettled},
		{"a refund the order asked for or heard of is not settled as the payment's refund", failedHalf},
		{"a return the order recorded did not reach the stock once", returnID},
		{"goods came back that were not sold", unsold},
	} {
		if !reported(c.rule, c.id) {
			t.Errorf("rule %q did not report %s; violations: %q", c.rule, c.id, violations)
		}
	}
	for _, v := range violations {
		if strings.Contains(v, fine) && !strings.Contains(v, "reservation") {
			t.Errorf("a confirmed order refunded in part, consistently, is reported: %s", v)
		}
	}
}

// TestInvariants_OrphansOfDroppedForeignKeysAreReported: the rows whose
// foreign keys were dropped for the saga's hot path (ADR 0039) are written
// here without their parent, as the database now allows even with triggers
// on, and the checker names each one.
func TestInvariants_OrphansOfDroppedForeignKeysAreReported(t *testing.T) {
	shop := Start(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	lineOrder, timelineOrder, reservation, product := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, s := range []string{
		`INSERT INTO orders.order_items (order_id, product_id, quantity) VALUES ('` + lineOrder + `', gen_random_uuid(), 1)`,
		`INSERT INTO orders.order_timeline (order_id, step) VALUES ('` + timelineOrder + `', 'placed')`,
		`INSERT INTO products.reservation_lines (order_id, product_id, name, unit_price, quantity)
		 VALUES ('` + reservation + `', gen_random_uuid(), 'Lost mug', 1.00, 1)`,
		`INSERT INTO products.stock_movements (product_id, kind, delta, reason) VALUES ('` + product + `', 'correction', 0, 'orphan')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	violations := invariantViolations(t, db)
	for _, c := range []struct{ rule, id string }{
		{"an order line or timeline entry has no order", lineOrder},
		{"an order line or timeline entry has no order", timelineOrder},
		{"a reservation line has no reservation", reservation},
		{"a stock movement has no product", product},
	} {
		found := false
		for _, v := range violations {
			found = found || strings.HasPrefix(v, c.rule+":") && strings.Contains(v, c.id)
		}
		if !found {
			t.Errorf("rule %q did not report %s; violations: %q", c.rule, c.id, violations)
		}
	}
}
