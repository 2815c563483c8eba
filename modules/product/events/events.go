// Package events is the product module's public face on the bus: catalog
// and stock events with their stable, versioned names. Other modules may
// import it; nothing else of the product module.
//
// It imports only the standard library. Each event's wire shape is frozen
// in testdata/<event name>.json; a field may be added, while removing,
// renaming or retyping one makes a new version beside the old (docs/bus.md,
// "Evolving an event").
package events

import "time"

// Event names.
const (
	ProductCreatedV1     = "product.created.v1"
	ProductUpdatedV1     = "product.updated.v1"
	StockReservedV1      = "stock.reserved.v1"
	StockRejectedV1      = "stock.rejected.v1"
	StockReleasedV1      = "stock.released.v1"
	StockCommittedV1     = "stock.committed.v1"
	ProductsBackfilledV1 = "product.backfilled.v1"
)

// ProductCreated announces a new product. Currency is the price's (ISO
// 4217, "EUR"): "" in events published before it was added, which were in
// the shop's currency. So in ProductUpdated.
type ProductCreated struct {
	ProductID string    `json:"product_id"`
	SKU       string    `json:"sku"`
	Name      string    `json:"name"`
	Price     string    `json:"price"` // decimal, e.g. "12.50"
	Currency  string    `json:"currency"`
	CreatedAt time.Time `json:"created_at"`
}

// EventName is the event's name on the bus.
func (ProductCreated) EventName() string { return ProductCreatedV1 }

// ProductUpdated announces a changed name, price or active flag.
type ProductUpdated struct {
	ProductID string    `json:"product_id"`
	Name      string    `json:"name"`
	Price     string    `json:"price"`
	Currency  string    `json:"currency"`
	Active    bool      `json:"active"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EventName is the event's name on the bus.
func (ProductUpdated) EventName() string { return ProductUpdatedV1 }

// ReservedLine is one reserved line, with the authoritative name and unit
// price at the time of reservation: what the order will charge.
type ReservedLine struct {
	ProductID string `json:"product_id"`
	Name      string `json:"name"`
	UnitPrice string `json:"unit_price"`
	Quantity  int    `json:"quantity"`
}

// StockReserved: every line of the order is reserved until ExpiresAt.
type StockReserved struct {
	OrderID   string         `json:"order_id"`
	Lines     []ReservedLine `json:"lines"`
	ExpiresAt time.Time      `json:"expires_at"`
}

// EventName is the event's name on the bus.
func (StockReserved) EventName() string { return StockReservedV1 }

// ShortLine is a line that could not be reserved.
type ShortLine struct {
	ProductID string `json:"product_id"`
	Requested int    `json:"requested"`
	Available int    `json:"available"`
	Reason    string `json:"reason"` // "insufficient_stock", "unknown_product", "inactive_product"
}

// StockRejected: nothing was reserved, because of the short lines.
type StockRejected struct {
	OrderID string      `json:"order_id"`
	Short   []ShortLine `json:"short"`
}

// EventName is the event's name on the bus.
func (StockRejected) EventName() string { return StockRejectedV1 }

// StockReleased: the order's reservation was given back.
type StockReleased struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"` // "cancelled", "rejected", "expired"
}

// EventName is the event's name on the bus.
func (StockReleased) EventName() string { return StockReleasedV1 }

// StockCommitted: the order's reservation became a sale.
type StockCommitted struct {
	OrderID string `json:"order_id"`
}

// EventName is the event's name on the bus.
func (StockCommitted) EventName() string { return StockCommittedV1 }

// ProductState is one product as a backfill page carries it: what
// product.created and product.updated say of it, and UpdatedAt, the version
// a live event of it carries (a copy keeps the newest).
type ProductState struct {
	ProductID string    `json:"product_id"`
	Name      string    `json:"name"`
	Price     string    `json:"price"`
	Active    bool      `json:"active"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ProductsBackfilled is one page of the catalog as it is now, published in
// answer to a backfill request (bus.BackfillRequested) for "product". Last
// says the request's final page has come.
type ProductsBackfilled struct {
	RequestID string         `json:"request_id"`
	Products  []ProductState `json:"products"`
	Last      bool           `json:"last"`
}

// EventName is the event's name on the bus.
func (ProductsBackfilled) EventName() string { return ProductsBackfilledV1 }
