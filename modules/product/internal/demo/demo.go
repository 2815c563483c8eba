// Package demo holds the demo catalog a new shop starts with, so that a
// newcomer sees a shop rather than an empty page.
package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
)

//go:generate go run images_gen.go

//go:embed catalog.json
var raw []byte

// images holds a small picture of each demo product, images/<SKU>.png,
// drawn by images_gen.go: the demo shop shows pictures without a network.
//
//go:embed images/*.png
var images embed.FS

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

// Image returns the picture of the demo product with the SKU.
func Image(sku string) ([]byte, error) {
	return fs.ReadFile(images, "images/"+sku+".png")
}
