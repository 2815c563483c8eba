package catalog

import (
	"bytes"
	"encoding/binary"
	"image"
	_ "image/jpeg" // registers the JPEG decoder DecodeConfig uses
	_ "image/png"  // and the PNG one
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/modshop/modshop/platform/apperr"
)

// Bounds on images.
const (
	// MaxImageBytes is the largest image staff may upload: a product photo
	// for the web fits well below it, and the database holds every byte.
	MaxImageBytes = 1 << 20
	// maxImagesPerProduct bounds what a product JSON lists.
	maxImagesPerProduct = 8
	maxAltLen           = 200
	maxImageSide        = 10000
)

// Image is a product image as the product JSON lists it; URL serves its
// bytes, Width and Height let a page reserve its space before it loads.
type Image struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Alt    string `json:"alt"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// imageURL is where an image's bytes are served; the id names bytes that
// never change, so the URL can be cached for ever.
func imageURL(productID, imageID string) string {
	return "/api/v1/products/" + productID + "/images/" + imageID
}

// sniffedImage is an upload read for what it is, not what it claims.
type sniffedImage struct {
	ContentType   string
	Width, Height int
}

var errNotAnImage = apperr.InvalidField("image", "must be a PNG, JPEG or WebP image (judged by its content, not its Content-Type); SVG is not accepted")

// sniffImage tells PNG, JPEG and WebP apart by their bytes and reads their
// size. Anything else is refused, SVG above all: it is a document that can
// carry script, served from the shop's own origin.
func sniffImage(data []byte) (sniffedImage, error) {
	ct := http.DetectContentType(data)
	var w, h int
	switch ct {
	case "image/png", "image/jpeg":
		cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil || "image/"+format != ct {
			return sniffedImage{}, errNotAnImage
		}
		w, h = cfg.Width, cfg.Height
	case "image/webp":
		var ok bool
		if w, h, ok = webpSize(data); !ok {
			return sniffedImage{}, errNotAnImage
		}
	default:
		return sniffedImage{}, errNotAnImage
	}
	if w < 1 || h < 1 || w > maxImageSide || h > maxImageSide {
		return sniffedImage{}, apperr.InvalidField("image", "must be from 1 to 10000 pixels wide and high")
	}
	return sniffedImage{ContentType: ct, Width: w, Height: h}, nil
}

// webpSize reads a WebP's canvas size from its first chunk (the standard
// library has no WebP decoder): VP8X holds the canvas, VP8L and VP8 the
// frame's size in their headers.
func webpSize(d []byte) (w, h int, ok bool) {
	if len(d) < 30 || string(d[0:4]) != "RIFF" || string(d[8:12]) != "WEBP" {
		return 0, 0, false
	}
	le24 := func(b []byte) int { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
	p := d[20:]
	switch string(d[12:16]) {
	case "VP8X":
		return le24(p[4:7]) + 1, le24(p[7:10]) + 1, true
	case "VP8L":
		if p[0] != 0x2f {
			return 0, 0, false
		}
		bits := binary.LittleEndian.Uint32(p[1:5])
		return int(bits&0x3fff) + 1, int(bits>>14&0x3fff) + 1, true
	case "VP8 ":
		if p[3] != 0x9d || p[4] != 0x01 || p[5] != 0x2a {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(p[6:8]) & 0x3fff), int(binary.LittleEndian.Uint16(p[8:10]) & 0x3fff), true
	}
	return 0, 0, false
}

// ImageChange is what staff send to change an image: its alt text (""
// goes back to the product's name) or its place (0 is the primary image,
// the one cards show).
type ImageChange struct {
	Alt      *string `json:"alt"`
	Position *int    `json:"position"`
}

func (c *ImageChange) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(f, m string) { errs = append(errs, apperr.FieldError{Field: f, Message: m}) }
	if c.Alt == nil && c.Position == nil {
		add("body", "send at least one of alt, position")
	}
	if c.Alt != nil {
		a := strings.TrimSpace(*c.Alt)
		c.Alt = &a
		if utf8.RuneCountInString(a) > maxAltLen {
			add("alt", "must be at most 200 characters")
		}
	}
	if c.Position != nil && (*c.Position < 0 || *c.Position >= maxImagesPerProduct) {
		add("position", "must be from 0 to 7")
	}
	return errs
}
