package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
)

// Payment is a payment as the API shows it, with its refunds and what it
// nets: the captured amount less what was refunded.
type Payment struct {
	ID             string     `json:"id"`
	OrderID        string     `json:"order_id"`
	UserID         string     `json:"user_id"`
	Amount         string     `json:"amount"`
	Currency       string     `json:"currency"` // of every amount of the payment and its refunds
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
	Currency      string     `json:"currency"` // its payment's
	Reason        string     `json:"reason"`
	Status        string     `json:"status"`
	FailureReason *string    `json:"failure_reason"`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
	RefundedAt    *time.Time `json:"refunded_at"`
}

var errNoPayments = apperr.NotFound("no payments for this order")

// OrderPayments returns the payments of an order with their refunds: to
// the customer they belong to, or to staff. Anyone else is told there are
// none, as is the customer of an order not yet charged.
func (s *Service) OrderPayments(ctx context.Context, who auth.Identity, orderID string) ([]Payment, error) {
	if !isUUID(orderID) {
		return nil, apperr.InvalidField("order_id", "must be an order id (a UUID)")
	}
	staff := who.HasRole(auth.RoleAdmin)
	payments, err := paymentsOfOrder(ctx, s.db, orderID, who.UserID, staff)
	if err != nil {
		return nil, err
	}
	if len(payments) == 0 && !staff {
		return nil, errNoPayments
	}
	ids := make([]string, len(payments))
	byID := map[string]*Payment{}
	for i := range payments {
		payments[i].Refunds = []Refund{}
		payments[i].Currency = s.currency(payments[i].Currency)
		ids[i] = payments[i].ID
		byID[payments[i].ID] = &payments[i]
	}
	if len(ids) == 0 {
		return []Payment{}, nil
	}
	refunds, err := refundsOfPayments(ctx, s.db, ids)
	if err != nil {
		return nil, fmt.Errorf("refunds of order %s: %w", orderID, err)
	}
	for _, r := range refunds {
		p := byID[r.PaymentID]
		r.Currency = p.Currency
		p.Refunds = append(p.Refunds, r)
	}
	return payments, nil
}
