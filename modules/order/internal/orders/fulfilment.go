package orders

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
)

// FulfilmentState is how far a confirmed order has got to its customer.
// It moves beside the status, not as more statuses (ADR 0032): an order
// stays confirmed while it is shipped and delivered.
type FulfilmentState string

// The fulfilment states, in their forward order; pickup goes from
// unfulfilled straight to delivered (collected).
const (
	Unfulfilled FulfilmentState = "unfulfilled"
	Shipped     FulfilmentState = "shipped"
	Delivered   FulfilmentState = "delivered"
)

// ShippingChoice is the shipping method as the order was placed with it:
// its label and price are copies, not the current configuration's.
type ShippingChoice struct {
	Code  string `json:"code"`
	Label string `json:"label"`
	Price string `json:"price"`
}

// Fulfilment is the order's fulfilment as the API shows it.
type Fulfilment struct {
	State          FulfilmentState `json:"state"`
	Carrier        *string         `json:"carrier"`
	TrackingNumber *string         `json:"tracking_number"`
	ShippedAt      *time.Time      `json:"shipped_at"`
	DeliveredAt    *time.Time      `json:"delivered_at"`
}

// Shipment is what staff send when an order leaves.
type Shipment struct {
	Carrier        string `json:"carrier"`
	TrackingNumber string `json:"tracking_number"`
}

// maxShipmentBytes bounds the body of a shipment: two short strings.
const maxShipmentBytes = 4 << 10

var trackingPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]{0,59}$`)

func (sh *Shipment) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	sh.Carrier, sh.TrackingNumber = strings.TrimSpace(sh.Carrier), strings.TrimSpace(sh.TrackingNumber)
	if sh.Carrier == "" || utf8.RuneCountInString(sh.Carrier) > 60 || hasControl(sh.Carrier) {
		errs = append(errs, apperr.FieldError{Field: "carrier", Message: "must be 1 to 60 printable characters"})
	}
	if !trackingPattern.MatchString(sh.TrackingNumber) {
		errs = append(errs, apperr.FieldError{Field: "tracking_number", Message: "must be 1 to 60 letters, digits, spaces or hyphens"})
	}
	return errs
}

// Ship marks a confirmed order shipped with a carrier and tracking number
// and publishes order.shipped.v1 in the same transaction. The same
// shipment again answers the order as it is; another one is a conflict.
func (s *Service) Ship(ctx context.Context, caller auth.Identity, id string, sh Shipment) (Order, error) {
	if errs := sh.validate(); len(errs) > 0 {
		return Order{}, apperr.Invalid(errs...)
	}
	return s.fulfil(ctx, caller, id, func(tx *gorm.DB, o orderRow) error {
		if o.ShippingMethod == PickupCode {
			return apperr.Conflict("the order is collected in store: there is nothing to ship; mark it delivered when it is collected")
		}
		if o.FulfilmentState != Unfulfilled {
			if deref(o.Carrier) == sh.Carrier && deref(o.TrackingNumber) == sh.TrackingNumber {
				return nil // the same shipment again
			}
			return apperr.Conflict(fmt.Sprintf("the order is %s already, with %s tracking number %s", o.FulfilmentState, deref(o.Carrier), deref(o.TrackingNumber)))
		}
		at, err := markShipped(tx, o.ID, sh)
		if err != nil {
			return err
		}
		if err := addTimeline(tx, o.ID, timelineEntry{step: "shipped", detail: sh.Carrier + ", tracking number " + sh.TrackingNumber}); err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, events.OrderShipped{OrderID: o.ID, UserID: o.UserID, Carrier: sh.Carrier,
			TrackingNumber: sh.TrackingNumber, ShippedAt: at})
	})
}

// Deliver marks a confirmed order delivered (a pickup order: collected)
// and publishes order.delivered.v1 in the same transaction. An order that
// is to be shipped must be shipped first; one delivered already is
// answered as it is.
func (s *Service) Deliver(ctx context.Context, caller auth.Identity, id string) (Order, error) {
	return s.fulfil(ctx, caller, id, func(tx *gorm.DB, o orderRow) error {
		switch {
		case o.FulfilmentState == Delivered:
			return nil // delivered again
		case o.FulfilmentState == Unfulfilled && o.ShippingMethod != PickupCode:
			return apperr.Conflict("the order is not shipped yet: ship it (carrier and tracking number) first")
		}
		at, err := markDelivered(tx, o.ID)
		if err != nil {
			return err
		}
		detail := "delivered by " + deref(o.Carrier)
		if o.ShippingMethod == PickupCode {
			detail = "collected in store"
		}
		if err := addTimeline(tx, o.ID, timelineEntry{step: "delivered", detail: detail}); err != nil {
			return err
		}
		return s.pub.Publish(ctx, tx, events.OrderDelivered{OrderID: o.ID, UserID: o.UserID, DeliveredAt: at})
	})
}

// fulfil runs one fulfilment step on a confirmed order, locked, and
// answers the order as it is afterwards.
func (s *Service) fulfil(ctx context.Context, caller auth.Identity, id string, step func(tx *gorm.DB, o orderRow) error) (Order, error) {
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return Order{}, errNoOrder
	}
	ctx = bus.WithCorrelationID(ctx, id)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		o, ok, err := lockOrder(tx, id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoOrder
		}
		if o.Status != Confirmed {
			return apperr.Conflict(fmt.Sprintf("the order is %s: only confirmed orders are shipped and delivered", o.Status))
		}
		if o.FulfilmentState == Unfulfilled && o.RefundState == RefundFull {
			// Every cent came back before anything left the shop: there
			// is nothing to send or hand over.
			return apperr.Conflict("the order is refunded in full: there is nothing to ship or hand over")
		}
		return step(tx, o)
	})
	if err != nil {
		return Order{}, err
	}
	return s.Get(ctx, caller, id)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
