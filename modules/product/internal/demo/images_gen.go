//go:build ignore

// images_gen draws the demo catalog's product pictures into images/, one
// PNG per SKU: a flat still life in the colours of the product's
// category, a few KB each, so that the demo shop shows pictures without
// any network. Run by go generate; the files are committed.
package main

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
)

const w, h = 400, 300

type shape struct {
	in  func(x, y float64) bool
	col color.NRGBA
}

func rect(x0, y0, x1, y1 float64, c color.NRGBA) shape {
	return shape{func(x, y float64) bool { return x >= x0 && x < x1 && y >= y0 && y < y1 }, c}
}

func ellipse(cx, cy, rx, ry float64, c color.NRGBA) shape {
	return shape{func(x, y float64) bool { dx, dy := (x-cx)/rx, (y-cy)/ry; return dx*dx+dy*dy <= 1 }, c}
}

func ring(cx, cy, r0, r1 float64, c color.NRGBA) shape {
	return shape{func(x, y float64) bool { d := math.Hypot(x-cx, y-cy); return d >= r0 && d <= r1 && y <= cy }, c}
}

func triangle(ax, ay, bx, by, cx, cy float64, c color.NRGBA) shape {
	side := func(px, py, qx, qy, x, y float64) float64 { return (qx-px)*(y-py) - (qy-py)*(x-px) }
	return shape{func(x, y float64) bool {
		a, b, d := side(ax, ay, bx, by, x, y), side(bx, by, cx, cy, x, y), side(cx, cy, ax, ay, x, y)
		return (a >= 0 && b >= 0 && d >= 0) || (a <= 0 && b <= 0 && d <= 0)
	}, c}
}

func shade(c color.NRGBA, f float64) color.NRGBA {
	m := func(v uint8) uint8 { return uint8(math.Max(0, math.Min(255, float64(v)*f))) }
	return color.NRGBA{m(c.R), m(c.G), m(c.B), 255}
}

// palettes: background, object, accent, by category.
var palettes = map[string][3]color.NRGBA{
	"coffee-tea": {{0xf3, 0xe9, 0xdc, 255}, {0x7a, 0x4b, 0x2a, 255}, {0xd9, 0xa4, 0x41, 255}},
	"tea":        {{0xe8, 0xf1, 0xe4, 255}, {0x5e, 0x8c, 0x61, 255}, {0xf2, 0xc1, 0x4e, 255}},
	"kitchen":    {{0xe6, 0xee, 0xf3, 255}, {0x3f, 0x6e, 0x8c, 255}, {0xe0, 0x7a, 0x5f, 255}},
	"books":      {{0xf4, 0xee, 0xe1, 255}, {0x8c, 0x2f, 0x39, 255}, {0xe9, 0xd8, 0xa6, 255}},
	"stationery": {{0xee, 0xea, 0xf5, 255}, {0x4b, 0x3f, 0x72, 255}, {0xf0, 0x8a, 0x4b, 255}},
	"outdoor":    {{0xe3, 0xef, 0xf0, 255}, {0x2f, 0x5d, 0x50, 255}, {0xf2, 0xa5, 0x41, 255}},
	"home":       {{0xf5, 0xec, 0xe6, 255}, {0xb5, 0x65, 0x4a, 255}, {0x6b, 0x8f, 0x71, 255}},
	"audio":      {{0xe9, 0xe9, 0xec, 255}, {0x2b, 0x2d, 0x42, 255}, {0xef, 0x83, 0x54, 255}},
}

// still draws the category's object, varied by v (0..1) so that products
// of one category differ.
func still(cat string, v float64) []shape {
	p := palettes[cat]
	bg, obj, acc := p[0], shade(p[1], 0.85+0.3*v), p[2]
	s := []shape{rect(0, 0, w, h, bg), ellipse(200, 250, 120, 18, shade(bg, 0.88))}
	switch cat {
	case "coffee-tea": // a bag with a label and a bean
		s = append(s, rect(135, 70, 265, 250, obj), triangle(135, 70, 265, 70, 200, 45, shade(obj, 0.8)),
			rect(155, 130, 245, 190, acc), ellipse(200, 160, 22, 14, shade(obj, 0.7)))
	case "tea": // a cup on a saucer
		s = append(s, ellipse(200, 245, 110, 14, shade(acc, 0.9)), ring(285, 170, 22, 36, obj),
			rect(130, 130, 270, 200, obj), ellipse(200, 200, 70, 40, obj), ellipse(200, 130, 70, 12, shade(obj, 0.7)))
	case "kitchen": // a bowl with a spoon
		s = append(s, rect(250, 60, 262, 170, shade(acc, 0.8)), ellipse(200, 160, 120, 80, obj),
			rect(70, 60, 330, 160, bg), ellipse(200, 160, 120, 18, shade(obj, 0.75)), rect(160, 236, 240, 248, obj))
	case "books": // a standing book
		s = append(s, rect(140, 50, 260, 250, obj), rect(140, 50, 156, 250, shade(obj, 0.7)),
			rect(175, 90, 240, 105, acc), rect(175, 115, 225, 122, acc))
	case "stationery": // a notebook and a pen
		s = append(s, rect(120, 60, 250, 250, obj), rect(120, 60, 134, 250, shade(obj, 0.7)),
			rect(225, 60, 235, 250, acc), rect(275, 70, 291, 220, shade(acc, 0.9)), triangle(275, 220, 291, 220, 283, 245, shade(bg, 0.4)))
	case "outdoor": // mountains under a sun
		s = append(s, ellipse(290, 90, 34, 34, acc), triangle(70, 250, 190, 80, 310, 250, obj),
			triangle(200, 250, 280, 140, 360, 250, shade(obj, 0.75)), triangle(165, 117, 190, 80, 215, 117, bg))
	case "home": // a vase with a stem
		s = append(s, rect(196, 40, 204, 120, shade(acc, 0.8)), ellipse(182, 60, 18, 10, acc),
			ellipse(200, 190, 65, 62, obj), rect(180, 110, 220, 140, obj), ellipse(200, 110, 24, 6, shade(obj, 0.7)))
	case "audio": // a speaker
		s = append(s, rect(140, 50, 260, 250, obj), ellipse(200, 100, 26, 26, shade(obj, 1.6)),
			ellipse(200, 185, 42, 42, shade(obj, 1.6)), ellipse(200, 185, 16, 16, acc))
	}
	return s
}

func draw(shapes []shape) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	const ss = 2 // samples per side, for smooth edges
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var r, g, b float64
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					fx, fy := float64(x)+(float64(sx)+0.5)/ss, float64(y)+(float64(sy)+0.5)/ss
					var c color.NRGBA
					for _, s := range shapes {
						if s.in(fx, fy) {
							c = s.col
						}
					}
					r, g, b = r+float64(c.R), g+float64(c.G), b+float64(c.B)
				}
			}
			n := float64(ss * ss)
			img.SetNRGBA(x, y, color.NRGBA{uint8(r / n), uint8(g / n), uint8(b / n), 255})
		}
	}
	return img
}

func main() {
	raw, err := os.ReadFile("catalog.json")
	if err != nil {
		log.Fatal(err)
	}
	var cat struct {
		Products []struct {
			SKU        string   `json:"sku"`
			Categories []string `json:"categories"`
		} `json:"products"`
	}
	if err := json.Unmarshal(raw, &cat); err != nil {
		log.Fatal(err)
	}
	for _, p := range cat.Products {
		hs := fnv.New32a()
		hs.Write([]byte(p.SKU))
		v := float64(hs.Sum32()%1000) / 1000
		var buf bytes.Buffer
		enc := png.Encoder{CompressionLevel: png.BestCompression}
		look := p.Categories[0]
		if slices.Contains(p.Categories, "tea") {
			look = "tea" // a cup says tea better than a coffee bag
		}
		if err := enc.Encode(&buf, draw(still(look, v))); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("images", p.SKU+".png"), buf.Bytes(), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
