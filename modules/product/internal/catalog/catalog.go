// Package catalog is the product module's inside: categories, products,
// full-text search, inventory and the stock reservations of the order saga.
package catalog

import (
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modshop/modshop/platform/apperr"
)

// Bounds on input.
const (
	MaxPageSize     = 100
	maxNameLen      = 120
	maxDescription  = 4000
	maxStockDelta   = 1_000_000
	maxInitialStock = 1_000_000
	maxQueryLen     = 200
	maxCategories   = 10
	maxOnHand       = 1_000_000_000 // also a CHECK on inventory
	// maxCategoryCount is the most categories the shop keeps: GET
	// /categories lists them all, unpaged (about 150 bytes each).
	maxCategoryCount = 500
)

// Product is a product as the API shows it.
type Product struct {
	ID          string     `json:"id"`
	SKU         string     `json:"sku"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Price       string     `json:"price"`
	Currency    string     `json:"currency"` // the shop's, ISO 4217
	Active      bool       `json:"active"`
	Categories  []Category `json:"categories"`
	Images      []Image    `json:"images"`
	Available   int        `json:"available"`
	Inventory   *Inventory `json:"inventory,omitempty"` // staff only
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Inventory is the stock detail staff see.
type Inventory struct {
	OnHand   int `json:"on_hand"`
	Reserved int `json:"reserved"`
}

// Category groups products; it may have a parent.
type Category struct {
	ID         string  `json:"id"`
	Slug       string  `json:"slug"`
	Name       string  `json:"name"`
	ParentSlug *string `json:"parent,omitempty"`
}

var (
	skuPattern  = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{0,31}$`)
	slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
)

// NewProduct is what staff send to create a product.
type NewProduct struct {
	SKU         string   `json:"sku"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Price       string   `json:"price"`
	Stock       *int     `json:"stock"`
	Categories  []string `json:"categories"`
	Active      *bool    `json:"active"`
}

func (p *NewProduct) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(f, m string) { errs = append(errs, apperr.FieldError{Field: f, Message: m}) }
	p.SKU = strings.TrimSpace(p.SKU)
	p.Name = strings.TrimSpace(p.Name)
	if !skuPattern.MatchString(p.SKU) {
		add("sku", "must be 1 to 32 characters: capital letters, digits and '-'")
	}
	if msg := checkName(p.Name); msg != "" {
		add("name", msg)
	}
	if utf8.RuneCountInString(p.Description) > maxDescription {
		add("description", "must be at most 4000 characters")
	}
	if price, ok := normalisePrice(p.Price); ok {
		p.Price = price
	} else {
		add("price", "must be a decimal amount such as \"12.50\", more than 0 and below 100000000")
	}
	if p.Stock != nil && (*p.Stock < 0 || *p.Stock > maxInitialStock) {
		add("stock", "must be a whole number from 0 to 1000000")
	}
	errs = append(errs, checkSlugs(p.Categories)...)
	return errs
}

// ProductChange is what staff send to change a product; absent fields stay.
// Stock has its own endpoint.
type ProductChange struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description"`
	Price       *string   `json:"price"`
	Active      *bool     `json:"active"`
	Categories  *[]string `json:"categories"`
}

func (c *ProductChange) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(f, m string) { errs = append(errs, apperr.FieldError{Field: f, Message: m}) }
	if c.Name == nil && c.Description == nil && c.Price == nil && c.Active == nil && c.Categories == nil {
		add("body", "send at least one of name, description, price, active, categories")
	}
	if c.Name != nil {
		n := strings.TrimSpace(*c.Name)
		c.Name = &n
		if msg := checkName(n); msg != "" {
			add("name", msg)
		}
	}
	if c.Description != nil && utf8.RuneCountInString(*c.Description) > maxDescription {
		add("description", "must be at most 4000 characters")
	}
	if c.Price != nil {
		if price, ok := normalisePrice(*c.Price); ok {
			c.Price = &price
		} else {
			add("price", "must be a decimal amount such as \"12.50\", more than 0 and below 100000000")
		}
	}
	if c.Categories != nil {
		errs = append(errs, checkSlugs(*c.Categories)...)
	}
	return errs
}

func checkName(n string) string {
	switch {
	case n == "":
		return "is required"
	case utf8.RuneCountInString(n) > maxNameLen:
		return "must be at most 120 characters"
	}
	return ""
}

func checkSlugs(slugs []string) []apperr.FieldError {
	if len(slugs) > maxCategories {
		return []apperr.FieldError{{Field: "categories", Message: "at most 10 categories"}}
	}
	for _, s := range slugs {
		if !slugPattern.MatchString(s) || len(s) > 60 {
			return []apperr.FieldError{{Field: "categories", Message: "must be category slugs such as \"coffee-tea\""}}
		}
	}
	return nil
}

// NewCategory is what staff send to create a category.
type NewCategory struct {
	Slug   string  `json:"slug"`
	Name   string  `json:"name"`
	Parent *string `json:"parent"`
}

func (c *NewCategory) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	c.Name = strings.TrimSpace(c.Name)
	if !slugPattern.MatchString(c.Slug) || len(c.Slug) > 60 {
		errs = append(errs, apperr.FieldError{Field: "slug", Message: "must be lower-case words joined by '-', at most 60 characters"})
	}
	if c.Name == "" || utf8.RuneCountInString(c.Name) > 80 {
		errs = append(errs, apperr.FieldError{Field: "name", Message: "must be 1 to 80 characters"})
	}
	if c.Parent != nil && !slugPattern.MatchString(*c.Parent) {
		errs = append(errs, apperr.FieldError{Field: "parent", Message: "must be the slug of an existing category"})
	}
	return errs
}

// StockChange restocks (positive) or corrects (negative) on-hand stock.
type StockChange struct {
	Delta  int    `json:"delta"`
	Reason string `json:"reason"`
}

func (s *StockChange) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	if s.Delta == 0 || s.Delta < -maxStockDelta || s.Delta > maxStockDelta {
		errs = append(errs, apperr.FieldError{Field: "delta", Message: "must be a non-zero whole number from -1000000 to 1000000"})
	}
	if utf8.RuneCountInString(s.Reason) > 200 {
		errs = append(errs, apperr.FieldError{Field: "reason", Message: "must be at most 200 characters"})
	}
	return errs
}
