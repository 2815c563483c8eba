package webtest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// cardImage is what a card's picture says about itself.
type cardImage struct {
	Title    string `json:"title"`
	Alt      string `json:"alt"`
	Width    string `json:"width"`
	Height   string `json:"height"`
	Loading  string `json:"loading"`
	Decoding string `json:"decoding"`
	Natural  int    `json:"natural"`
	Holder   string `json:"holder"` // a placeholder's label, when there is no picture
}

const cardImagesJS = `[...document.querySelectorAll("#products li")].map((li) => {
	const img = li.querySelector("img.product-image");
	const holder = li.querySelector(".product-image.placeholder");
	return {
		title: li.querySelector(".card-title").textContent.trim(),
		alt: img?.getAttribute("alt") ?? "", width: img?.getAttribute("width") ?? "", height: img?.getAttribute("height") ?? "",
		loading: img?.getAttribute("loading") ?? "", decoding: img?.getAttribute("decoding") ?? "",
		natural: img && img.complete ? img.naturalWidth : 0, holder: holder?.getAttribute("aria-label") ?? "",
	};
})`

// cardPrices are the prices the cards show, in cents.
func cardPrices(t *testing.T, s *tab) []int {
	t.Helper()
	var out []int
	for _, p := range s.texts("#products .price") {
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, p)
		n, err := strconv.Atoi(digits)
		if err != nil {
			t.Fatalf("price %q: %v", p, err)
		}
		out = append(out, n)
	}
	return out
}

// TestCatalogInTheBrowser: the storefront shows the demo catalog's
// pictures with alt text, loading lazily below the first row; the sort
// control reorders and stays in the URL; the count is shown; staff upload
// and remove a picture.
func TestCatalogInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) {
		c.SeedDemo = true
		c.LoginPerClient = 1000
	})
	_, admin := shop.Admin(t)
	r := shop.API.Do("POST", "/api/v1/products", map[string]any{"sku": "ZZ-1", "name": "Zebra-striped umbrella", "price": "0.50", "stock": 3,
		"description": "Not yet photographed."}, testkit.Bearer(admin))
	if r.Status != http.StatusCreated {
		t.Fatalf("create a product without pictures: %d %s", r.Status, r.Body)
	}
	var bare struct{ ID string }
	r.Decode(t, &bare)
	staffName := apptest.Unique("staffer")
	if _, err := shop.CreateUser(context.Background(), staffName, staffName+"@example.com", password, true); err != nil {
		t.Fatal(err)
	}
	s := b.newTab(t, "the shopper", shop.URL)

	t.Run("cards show pictures with alt text, lazily below the first row, and the count", func(t *testing.T) {
		s := s.as(t)
		s.open("/")
		s.visible("#products li")
		if got := s.text("#results-status"); !strings.HasPrefix(got, "53 products, page 1") {
			t.Errorf("status = %q, want 53 products on page 1", got)
		}
		s.waitFor("the first pictures", `[...document.querySelectorAll("#products img")].slice(0, 4).every((i) => i.complete && i.naturalWidth > 0)`)
		cards := eval[[]cardImage](s, cardImagesJS)
		if len(cards) != 12 {
			t.Fatalf("%d cards, want 12", len(cards))
		}
		for i, c := range cards {
			wantLoading := "lazy"
			if i < 4 {
				wantLoading = "eager"
			}
			if c.Alt != c.Title || c.Width != "400" || c.Height != "300" || c.Loading != wantLoading || c.Decoding != "async" {
				t.Errorf("card %d %q picture = %+v, want alt = its name, 400x300, loading %s, decoding async", i, c.Title, c, wantLoading)
			}
			if i < 4 && c.Natural != 400 {
				t.Errorf("card %d %q: the picture did not load (natural width %d)", i, c.Title, c.Natural)
			}
		}
		s.shot("catalog")
	})

	t.Run("the sort control reorders, stays in the URL and across pages", func(t *testing.T) {
		s := s.as(t)
		s.open("/")
		s.choose("#search-sort", "price")
		s.waitFor("sorted by price", `location.search === "?sort=price" && !document.getElementById("main").hasAttribute("aria-busy")`)
		prices := cardPrices(t, s)
		if len(prices) != 12 || prices[0] != 50 {
			t.Errorf("cheapest first shows %v, want 12 cards from 0.50", prices)
		}
		for i := 1; i < len(prices); i++ {
			if prices[i] < prices[i-1] {
				t.Errorf("sorted by price: %v is not rising", prices)
				break
			}
		}
		cards := eval[[]cardImage](s, cardImagesJS)
		if cards[0].Title != "Zebra-striped umbrella" || cards[0].Holder == "" {
			t.Errorf("the picture-less product's card = %+v, want a labelled placeholder", cards[0])
		}
		last := prices[len(prices)-1]
		s.click("#next-page")
		s.waitFor("page 2", `document.getElementById("results-status")?.textContent.includes("page 2")`)
		if !strings.Contains(s.path(), "sort=price") {
			t.Errorf("page 2 at %s, lost the sort", s.path())
		}
		if next := cardPrices(t, s); len(next) == 0 || next[0] < last {
			t.Errorf("page 2 of price order starts at %v, after %d", next, last)
		}

		s.open("/?sort=-price")
		if got := eval[string](s, `document.getElementById("search-sort").value`); got != "-price" {
			t.Errorf("opening /?sort=-price leaves the control at %q", got)
		}
		prices = cardPrices(t, s)
		for i := 1; i < len(prices); i++ {
			if prices[i] > prices[i-1] {
				t.Errorf("sorted by -price: %v is not falling", prices)
				break
			}
		}
		s.shot("catalog-sorted")

		s.typeInto("#search-q", "teapot\n")
		s.waitFor("the search", `location.search.startsWith("?q=teapot") && !document.getElementById("main").hasAttribute("aria-busy")`)
		n := len(s.texts("#products .card-title"))
		want := fmt.Sprintf("%d product", n)
		if got := s.text("#results-status"); n == 0 || !strings.HasPrefix(got, want) {
			t.Errorf("search status = %q, want it to start with %q", got, want)
		}
	})

	t.Run("the product page shows its picture, the placeholder without one", func(t *testing.T) {
		s := s.as(t)
		s.open("/?q=ceramic+teapot")
		s.click("#products li .card-title a")
		s.visible(".gallery img")
		name := s.text("#product-name")
		if alt := s.attr(".gallery img", "alt"); alt != name || s.attr(".gallery img", "width") != "400" {
			t.Errorf("product picture alt %q width %q, want %q and 400", alt, s.attr(".gallery img", "width"), name)
		}
		s.waitFor("the picture", `document.querySelector(".gallery img").complete && document.querySelector(".gallery img").naturalWidth === 400`)
		s.shot("product-with-picture")
		s.open("/products/" + bare.ID)
		if got := s.attr(".gallery .placeholder", "aria-label"); got != "No picture of Zebra-striped umbrella yet" {
			t.Errorf("placeholder label = %q", got)
		}
	})

	t.Run("staff upload a picture, the shop shows it, staff remove it", func(t *testing.T) {
		st := b.newTab(t, "staff", shop.URL)
		st.open("/login")
		st.typeInto("#login-login", staffName)
		st.typeInto("#login-password", password+"\n")
		st.waitFor("staff to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(staffName)))
		st.open("/staff/products/" + bare.ID)
		st.visible("#image-form")

		dir := t.TempDir()
		svg := filepath.Join(dir, "drawing.svg")
		writeFile(t, svg, []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`))
		st.do("choose an SVG", chromedp.SetUploadFiles(chromedp.CSS("#image-file"), []string{svg}))
		st.expectFailure("/images", http.StatusUnsupportedMediaType)
		st.click("#image-upload")
		st.visible("#image-error")
		if got := st.text("#image-error"); !strings.Contains(got, "image/png") {
			t.Errorf("an SVG upload is answered with %q", got)
		}

		img := image.NewNRGBA(image.Rect(0, 0, 320, 240))
		for y := range 240 {
			for x := range 320 {
				img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 150, 255})
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "umbrella.png")
		writeFile(t, file, buf.Bytes())
		st.do("choose a picture", chromedp.SetUploadFiles(chromedp.CSS("#image-file"), []string{file}))
		st.click("#image-upload")
		st.visible("#product-images img")
		st.typeInto(`#product-images input[name="alt"]`, "A striped umbrella, open\n")
		st.waitFor("the alt text saved", `document.querySelector("#product-images img")?.getAttribute("alt") === "A striped umbrella, open"`)
		st.shot("staff-product-pictures")

		sh := s.as(t)
		sh.open("/products/" + bare.ID)
		sh.visible(".gallery img")
		if alt, w := sh.attr(".gallery img", "alt"), sh.attr(".gallery img", "width"); alt != "A striped umbrella, open" || w != "320" {
			t.Errorf("the shop shows the uploaded picture with alt %q width %q", alt, w)
		}

		st.click("#product-images .remove-image")
		st.waitFor("the picture removed", `document.querySelector("#product-images img") === null`)
		sh.open("/products/" + bare.ID)
		sh.visible(".gallery .placeholder")
	})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
