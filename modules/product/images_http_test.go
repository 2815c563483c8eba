package product_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/product/internal/catalog"
	"github.com/modshop/modshop/platform/testkit"
)

func init() {
	// Image bodies are documented as binary strings, read as files.
	for _, ct := range []string{"image/png", "image/jpeg", "image/webp"} {
		if openapi3filter.RegisteredBodyDecoder(ct) == nil {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
	}
}

// imageJSON is an image as a product lists it.
type imageJSON struct {
	ID     string `json:"id"`
	URL    string `json:"url"`
	Alt    string `json:"alt"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{200, 80, 40, 255})
	var b bytes.Buffer
	must(t, png.Encode(&b, img))
	return b.Bytes()
}

func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	must(t, jpeg.Encode(&b, image.NewRGBA(image.Rect(0, 0, w, h)), nil))
	return b.Bytes()
}

// testWebP is a 1×1 lossless WebP (the standard library writes none).
func testWebP(t testing.TB) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	must(t, err)
	return b
}

// uploadImage posts raw bytes as an image of product id, declared as ct.
func uploadImage(shop *shop, token, id, ct string, data []byte) *testkit.Response {
	opts := []testkit.Option{testkit.Header("Content-Type", ct)}
	if token != "" {
		opts = append(opts, testkit.Bearer(token))
	}
	return shop.API.Do("POST", "/api/v1/products/"+id+"/images", testkit.Raw(data), opts...)
}

func imageIDs(ims []imageJSON) []string {
	out := make([]string, len(ims))
	for i, im := range ims {
		out[i] = im.ID
	}
	return out
}

func TestStaff_UploadsServesReordersAndDeletesImages(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	api := shop.API
	_, admin := shop.Admin(t)
	p := createProduct(t, shop, admin, map[string]any{"sku": "KETTLE-1", "name": "Stovetop kettle", "price": "34.00", "stock": 3})
	if len(p.Images) != 0 {
		t.Fatalf("a new product has images %+v", p.Images)
	}

	// Each accepted type, declared as itself or as a plain byte stream:
	// the bytes decide, and their size is read from them.
	uploads := []struct {
		ct   string
		data []byte
		want string
		w, h int
	}{
		{"image/png", testPNG(t, 64, 48), "image/png", 64, 48},
		{"image/jpeg", testJPEG(t, 30, 20), "image/jpeg", 30, 20},
		{"image/webp", testWebP(t), "image/webp", 1, 1},
		{"application/octet-stream", testPNG(t, 5, 7), "image/png", 5, 7},
	}
	var ims []imageJSON
	for _, u := range uploads {
		r := uploadImage(shop, admin, p.ID, u.ct, u.data)
		if r.Status != http.StatusCreated {
			t.Fatalf("upload %s: %d %s", u.ct, r.Status, r.Body)
		}
		var im imageJSON
		r.Decode(t, &im)
		if im.Width != u.w || im.Height != u.h || im.Alt != "Stovetop kettle" || im.URL != "/api/v1/products/"+p.ID+"/images/"+im.ID || r.Header.Get("Location") != im.URL {
			t.Errorf("upload %s = %+v (Location %q), want %dx%d, the product's name as alt, served under the product", u.ct, im, r.Header.Get("Location"), u.w, u.h)
		}
		ims = append(ims, im)

		// Served back byte for byte, with its type, for ever cacheable.
		got := api.Do("GET", im.URL, nil)
		if got.Status != http.StatusOK || !bytes.Equal(got.Body, u.data) {
			t.Fatalf("GET %s: %d, %d bytes, want the %d uploaded", im.URL, got.Status, len(got.Body), len(u.data))
		}
		h := got.Header
		if h.Get("Content-Type") != u.want || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Cache-Control"), "max-age=31536000") || !strings.Contains(h.Get("Cache-Control"), "immutable") || h.Get("ETag") == "" {
			t.Errorf("GET %s headers: %v, want %s, nosniff, a year's immutable caching and an ETag", im.URL, h, u.want)
		}
		notModified := api.Do("GET", im.URL, nil, testkit.Header("If-None-Match", h.Get("ETag")))
		if notModified.Status != http.StatusNotModified || len(notModified.Body) != 0 {
			t.Errorf("GET %s with its ETag: %d %d bytes, want 304 and no body", im.URL, notModified.Status, len(notModified.Body))
		}
		if other := api.Do("GET", im.URL, nil, testkit.Header("If-None-Match", `"`+uuid.NewString()+`"`)); other.Status != http.StatusOK {
			t.Errorf("GET %s with another ETag: %d, want 200", im.URL, other.Status)
		}
	}

	// The product lists them in upload order, to shoppers too, in lists as well.
	_, got := getProduct(t, shop, "", p.ID)
	if !slices.Equal(imageIDs(got.Images), imageIDs(ims)) || got.Images[0].Width != 64 || got.Images[0].Height != 48 {
		t.Errorf("product images = %+v, want %+v", got.Images, ims)
	}
	if ps := listAll(t, shop, url.Values{}); len(ps) != 1 || !slices.Equal(imageIDs(ps[0].Images), imageIDs(ims)) {
		t.Errorf("listed images = %+v, want %v", ps, imageIDs(ims))
	}

	// Alt text: staff's own, and back to the product's name (which follows renames).
	r := api.Do("PATCH", ims[1].URL, map[string]any{"alt": "  The kettle on a gas ring  "}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("set alt: %d %s", r.Status, r.Body)
	}
	r = api.Do("PATCH", "/api/v1/products/"+p.ID, map[string]any{"name": "Whistling kettle"}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("rename: %d %s", r.Status, r.Body)
	}
	_, got = getProduct(t, shop, "", p.ID)
	if got.Images[0].Alt != "Whistling kettle" || got.Images[1].Alt != "The kettle on a gas ring" {
		t.Errorf("alts = %q, %q, want the new name and staff's text", got.Images[0].Alt, got.Images[1].Alt)
	}
	r = api.Do("PATCH", ims[1].URL, map[string]any{"alt": ""}, testkit.Bearer(admin))
	var changed productJSON
	r.Decode(t, &changed)
	if r.Status != http.StatusOK || changed.Images[1].Alt != "Whistling kettle" {
		t.Errorf("empty alt: %d %+v, want the product's name back", r.Status, changed.Images)
	}

	// The WebP becomes the primary image; the others move down.
	r = api.Do("PATCH", ims[2].URL, map[string]any{"position": 0}, testkit.Bearer(admin))
	r.Decode(t, &changed)
	want := []string{ims[2].ID, ims[0].ID, ims[1].ID, ims[3].ID}
	if r.Status != http.StatusOK || !slices.Equal(imageIDs(changed.Images), want) {
		t.Errorf("move to 0: %d %v, want %v", r.Status, imageIDs(changed.Images), want)
	}
	r = api.Do("PATCH", ims[2].URL, map[string]any{"position": 3}, testkit.Bearer(admin))
	r.Decode(t, &changed)
	want = []string{ims[0].ID, ims[1].ID, ims[3].ID, ims[2].ID}
	if r.Status != http.StatusOK || !slices.Equal(imageIDs(changed.Images), want) {
		t.Errorf("move to 3: %d %v, want %v", r.Status, imageIDs(changed.Images), want)
	}
	expectProblem(t, "move past the end", api.Do("PATCH", ims[2].URL, map[string]any{"position": 4}, testkit.Bearer(admin)), http.StatusUnprocessableEntity, "position")

	// Delete: gone from the product and from its URL, the rest close up.
	r = api.Do("DELETE", ims[1].URL, nil, testkit.Bearer(admin))
	if r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	expectProblem(t, "GET a deleted image", api.Do("GET", ims[1].URL, nil), http.StatusNotFound, "")
	expectProblem(t, "delete it again", api.Do("DELETE", ims[1].URL, nil, testkit.Bearer(admin)), http.StatusNotFound, "")
	_, got = getProduct(t, shop, "", p.ID)
	if want := []string{ims[0].ID, ims[3].ID, ims[2].ID}; !slices.Equal(imageIDs(got.Images), want) {
		t.Errorf("after delete = %v, want %v", imageIDs(got.Images), want)
	}
	r = api.Do("PATCH", ims[2].URL, map[string]any{"position": 0}, testkit.Bearer(admin))
	r.Decode(t, &changed)
	if want := []string{ims[2].ID, ims[0].ID, ims[3].ID}; r.Status != http.StatusOK || !slices.Equal(imageIDs(changed.Images), want) {
		t.Errorf("move after delete: %d %v, want %v", r.Status, imageIDs(changed.Images), want)
	}

	// An image is served only under its own product.
	other := createProduct(t, shop, admin, map[string]any{"sku": "KETTLE-2", "name": "Electric kettle", "price": "40.00"})
	expectProblem(t, "GET an image under another product", api.Do("GET", "/api/v1/products/"+other.ID+"/images/"+ims[0].ID, nil), http.StatusNotFound, "")
	expectProblem(t, "delete an image under another product", api.Do("DELETE", "/api/v1/products/"+other.ID+"/images/"+ims[0].ID, nil, testkit.Bearer(admin)), http.StatusNotFound, "")
}

// imagesState sums up the images a refused request must leave as they are.
func imagesState(t testing.TB, shop *shop) string {
	t.Helper()
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	var s string
	err := db.QueryRow(`SELECT concat_ws(' ', count(*), coalesce(string_agg(id::text || position || coalesce(alt, '-') || md5(data), ',' ORDER BY id), ''))
		FROM products.product_images`).Scan(&s)
	if err != nil {
		t.Fatalf("images state: %v", err)
	}
	return s
}

func TestImages_RefusesWhatIsNotAnAcceptedImageAndChangesNothing(t *testing.T) {
	t.Parallel()
	shop := startProduct(t)
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	p := createProduct(t, shop, admin, map[string]any{"sku": "LAMP-1", "name": "Desk lamp", "price": "25.00"})
	first := uploadImage(shop, admin, p.ID, "image/png", testPNG(t, 8, 8))
	if first.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", first.Status, first.Body)
	}
	var im imageJSON
	first.Decode(t, &im)
	before := imagesState(t, shop)

	svg := []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>`)
	var gifBytes bytes.Buffer
	must(t, gif.Encode(&gifBytes, image.NewPaletted(image.Rect(0, 0, 2, 2), []color.Color{color.Black, color.White}), nil))
	png := testPNG(t, 4, 4)
	big := append(testPNG(t, 4, 4), make([]byte, catalog.MaxImageBytes)...)
	for _, c := range []struct {
		what, ct string
		data     []byte
		status   int
		field    string
	}{
		{"SVG declared as SVG", "image/svg+xml", svg, http.StatusUnsupportedMediaType, ""},
		{"SVG declared as PNG", "image/png", svg, http.StatusUnprocessableEntity, "image"},
		{"SVG with a PNG signature in front", "image/png", append([]byte("\x89PNG\r\n\x1a\n"), svg...), http.StatusUnprocessableEntity, "image"},
		{"HTML declared as JPEG", "image/jpeg", []byte("<!doctype html><script>alert(1)</script>"), http.StatusUnprocessableEntity, "image"},
		{"a GIF", "image/png", gifBytes.Bytes(), http.StatusUnprocessableEntity, "image"},
		{"a PNG cut short", "image/png", png[:20], http.StatusUnprocessableEntity, "image"},
		{"a WebP header and nothing else", "image/webp", []byte("RIFF\x10\x00\x00\x00WEBPVP8 "), http.StatusUnprocessableEntity, "image"},
		{"an empty body", "image/png", []byte{}, http.StatusUnprocessableEntity, "image"},
		{"JSON", "application/json", []byte(`{"url":"http://example.com/a.png"}`), http.StatusUnsupportedMediaType, ""},
		{"more than 1 MiB", "image/png", big, http.StatusRequestEntityTooLarge, ""},
	} {
		expectProblem(t, c.what, uploadImage(shop, admin, p.ID, c.ct, c.data), c.status, c.field)
	}
	expectProblem(t, "upload as a customer", uploadImage(shop, customer, p.ID, "image/png", png), http.StatusForbidden, "")
	expectProblem(t, "upload anonymously", uploadImage(shop, "", p.ID, "image/png", png), http.StatusUnauthorized, "")
	expectProblem(t, "upload to no product", uploadImage(shop, admin, uuid.NewString(), "image/png", png), http.StatusNotFound, "")
	expectProblem(t, "upload to a malformed id", uploadImage(shop, admin, "42", "image/png", png), http.StatusNotFound, "")
	api := shop.API
	expectProblem(t, "PATCH as a customer", api.Do("PATCH", im.URL, map[string]any{"alt": "x"}, testkit.Bearer(customer)), http.StatusForbidden, "")
	expectProblem(t, "DELETE as a customer", api.Do("DELETE", im.URL, nil, testkit.Bearer(customer)), http.StatusForbidden, "")
	expectProblem(t, "DELETE anonymously", api.Do("DELETE", im.URL, nil), http.StatusUnauthorized, "")
	expectProblem(t, "PATCH nothing", api.Do("PATCH", im.URL, map[string]any{}, testkit.Bearer(admin)), http.StatusUnprocessableEntity, "body")
	expectProblem(t, "PATCH a long alt", api.Do("PATCH", im.URL, map[string]any{"alt": strings.Repeat("a", 201)}, testkit.Bearer(admin)), http.StatusUnprocessableEntity, "alt")
	expectProblem(t, "PATCH a negative position", api.Do("PATCH", im.URL, map[string]any{"position": -1}, testkit.Bearer(admin)), http.StatusUnprocessableEntity, "position")
	expectProblem(t, "PATCH an unknown field", api.Do("PATCH", im.URL, map[string]any{"data": "x"}, testkit.Bearer(admin)), http.StatusBadRequest, "")
	expectProblem(t, "GET an unknown image", api.Do("GET", "/api/v1/products/"+p.ID+"/images/"+uuid.NewString(), nil), http.StatusNotFound, "")
	expectProblem(t, "GET a malformed image id", api.Do("GET", "/api/v1/products/"+p.ID+"/images/x", nil), http.StatusNotFound, "")
	if after := imagesState(t, shop); after != before {
		t.Errorf("refused requests changed the images:\nbefore %s\nafter  %s", before, after)
	}

	// Eight images at most.
	for i := 1; i < 8; i++ {
		if r := uploadImage(shop, admin, p.ID, "image/png", png); r.Status != http.StatusCreated {
			t.Fatalf("image %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	before = imagesState(t, shop)
	expectProblem(t, "a ninth image", uploadImage(shop, admin, p.ID, "image/png", png), http.StatusConflict, "")
	if after := imagesState(t, shop); after != before {
		t.Errorf("the refused ninth image changed the images")
	}
}
