package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// Payment is a payment as the API shows it, with its refunds and what it
// nets: the captured amount less what was refunded.
type Payment struct {
	ID             string     `json:"id"`
	OrderID        string     `json:"order_id"`
	UserID         string     `json:"user_id"`
	Amount         string     `json:"amount"`
	Method         string     `json:"method"`
	Status         string     `json:"status"`
	FailureReason  *string    `json:"failure_reason"`
	Attempts       int        `json:"attempts"`
	RefundedAmount string     `json:"refunded_amount"`
	NetAmount      string     `json:"net_amount"`
	Refunds        []Refund   `json:"refunds"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	CapturedAt     *time.Time `json:"captured_at"`
	FailedAt       *time.Time `json:"failed_at"`
}

// Refund is a refund as the API shows it.
type Refund struct {
	ID            string     `json:"id"`
	PaymentID     string     `json:"-"`
	Amount        string     `json:"amount"`
	Reason        string     `json:"reason"`
	Status        string     `json:"status"`
	FailureReason *string    `json:"failure_reason"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	RefundedAt    *time.Time `json:"refunded_at"`
}

var errNoPayments = httpx.NotFound("no payments for this order")

// OrderPayments returns the payments of an order with their refunds: to
// the customer they belong to, or to staff. Anyone else is told there are
// none, as is the customer of an order not yet charged.
func (s *Service) OrderPayments(ctx context.Context, who auth.Identity, orderID string) ([]Payment, error) {
	if !isUUID(orderID) {
		return nil, httpx.Invalid(httpx.FieldError{Field: "order_id", Message: "must be an order id (a UUID)"})
	}
	staff := who.HasRole(auth.RoleAdmin)
	var payments []Payment
	err := s.db.WithContext(ctx).Raw(`SELECT p.id, p.order_id, p.user_id, p.amount::text AS amount, p.method, p.status,
			p.failure_reason, p.attempts, p.created_at, p.updated_at, p.captured_at, p.failed_at,
			r.refunded::numeric(10,2)::text AS refunded_amount,
			(CASE WHEN p.status = 'captured' THEN p.amount ELSE 0 END - r.refunded)::numeric(10,2)::text AS net_amount
		FROM payments p,
		     LATERAL (SELECT coalesce(sum(amount), 0) AS refunded FROM refunds WHERE payment_id = p.id AND status = 'succeeded') r
		WHERE p.order_id = ? AND (? OR p.user_id::text = ?)
		ORDER BY p.created_at, p.id`, orderID, staff, who.UserID).Scan(&payments).Error
	if err != nil {
		return nil, fmt.Errorf("payments of order %s: %w", orderID, err)
	}
	if len(payments) == 0 && !staff {
		return nil, errNoPayments
	}
	ids := make([]string, len(payments))
	byID := map[string]*Payment{}
	for i := range payments {
		payments[i].Refunds = []Refund{}
		ids[i] = payments[i].ID
		byID[payments[i].ID] = &payments[i]
	}
	if len(ids) == 0 {
		return []Payment{}, nil
	}
	var refunds []Refund
	err = s.db.WithContext(ctx).Raw(`SELECT id, payment_id, amount::text AS amount, reason, status, failure_reason,
			created_at, updated_at, refunded_at
		FROM refunds WHERE payment_id IN ? ORDER BY created_at, id`, ids).Scan(&refunds).Error
	if err != nil {
		return nil, fmt.Errorf("refunds of order %s: %w", orderID, err)
	}
	for _, r := range refunds {
		p := byID[r.PaymentID]
		p.Refunds = append(p.Refunds, r)
	}
	return payments, nil
}
