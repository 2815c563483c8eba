// Package demo holds the demo catalog a new shop starts with, so that a
// newcomer sees a shop rather than an empty page.
package demo

import (
	_ "embed"
	"encoding/json"
)

//go:embed catalog.json
var raw []byte

// Category is a demo category; Parent is a slug or nil.
type Category struct {
	Slug   string  `json:"slug"`
	Name   string  `json:"name"`
	Parent *string `json:"parent"`
}

// Product is a demo product.
type Product struct {
	SKU         string   `json:"sku"`
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Price       string   `json:"price"`
	Stock       int      `json:"stock"`
	Categories  []string `json:"categories"`
}

// Catalog is the whole demo catalog; categories come parents first.
type Catalog struct {
	Categories []Category `json:"categories"`
	Products   []Product  `json:"products"`
}

// Load parses the embedded catalog.
func Load() (Catalog, error) {
	var c Catalog
	err := json.Unmarshal(raw, &c)
	return c, err
}
