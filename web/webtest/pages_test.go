package webtest

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/httpx"
)

// TestPages_ServedByTheBinaryUnderTheCSP needs no browser: the binary
// answers the front end's pages with index.html, its files with their
// types, everything under the strict Content-Security-Policy, other
// addresses with 404 and the not-found page, and unknown API paths and
// files with a 404 problem.
func TestPages_ServedByTheBinaryUnderTheCSP(t *testing.T) {
	shop := apptest.Start(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(shop.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	for _, path := range []string{"/", "/cart", "/checkout", "/login", "/register", "/orders", "/orders/0b7e3c5e-2c07-4c5b-9d8e-2f3f1a3c1b10",
		"/products/0b7e3c5e-2c07-4c5b-9d8e-2f3f1a3c1b10", "/staff", "/staff/bus", "/staff/products/new", "/staff/orders?status=confirmed"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s, want the page", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(body, `<script type="module" src="/js/main.js"></script>`) {
			t.Errorf("GET %s is not index.html: %.200s", path, body)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != httpx.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", path, got, httpx.ContentSecurityPolicy)
		}
	}

	for path, typ := range map[string]string{
		"/app.css": "text/css", "/js/main.js": "text/javascript", "/js/pages/staff-bus.js": "text/javascript", "/favicon.svg": "image/svg+xml",
	} {
		resp, _ := get(path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) {
			t.Errorf("GET %s: %d %q, want %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), typ)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s lacks X-Content-Type-Options: nosniff", path)
		}
	}

	// An address with no page behind it is the shop's not-found page: 404,
	// with index.html, whose router draws "Not found".
	for _, path := range []string{"/products", "/products/", "/staff/", "/cart/", "/no-such-page", "/staffroom",
		"/orders/0b7e3c5e-2c07-4c5b-9d8e-2f3f1a3c1b10/x", "/staff/nope", "/js/"} {
		resp, body := get(path)
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %q, want 404 with the not-found page", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		if !strings.Contains(body, `<script type="module" src="/js/main.js"></script>`) {
			t.Errorf("GET %s is not index.html: %.200s", path, body)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != httpx.ContentSecurityPolicy {
			t.Errorf("GET %s: Content-Security-Policy %q, want %q", path, got, httpx.ContentSecurityPolicy)
		}
	}

	// The API, and files that are not there, answer with a 404 problem.
	for _, path := range []string{"/api/v1/nope", "/api/nope", "/api/", "/api", "/nope.js", "/js/nope.js", "/no-such-page.html"} {
		resp, _ := get(path)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != httpx.ProblemContentType {
			t.Errorf("GET %s: %d %q, want a 404 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	req, err := http.NewRequest(http.MethodPost, shop.URL+"/no-such-page", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Content-Type") != httpx.ProblemContentType {
		t.Errorf("POST /no-such-page: %d %q, want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// Clients that ask for /favicon.ico by convention get the shop's icon.
	resp, body := get("/favicon.ico")
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK ||
		(ct != "image/x-icon" && ct != "image/vnd.microsoft.icon") || !strings.HasPrefix(body, "\x00\x00\x01\x00") {
		t.Errorf("GET /favicon.ico: %d %q, want the icon", resp.StatusCode, ct)
	}
}

// TestPages_TextFilesAreServedGzipped: a browser that accepts gzip gets
// the pages, the stylesheet and the modules gzipped (Lighthouse's "enable
// text compression"), each the same bytes once unzipped; one that does not
// gets them as they are.
func TestPages_TextFilesAreServedGzipped(t *testing.T) {
	shop := apptest.Start(t)
	for _, p := range []string{"/", "/cart", "/app.css", "/js/main.js", "/js/pages/shop.js", "/favicon.svg"} {
		fetch := func(encoding string) (*http.Response, []byte) {
			t.Helper()
			req, err := http.NewRequest("GET", shop.URL+p, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept-Encoding", encoding) // set by hand: the client leaves the body as it came
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, b
		}
		plainResp, plain := fetch("identity")
		zResp, z := fetch("gzip, deflate, br")
		if plainResp.StatusCode != http.StatusOK || zResp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d plain, %d gzip", p, plainResp.StatusCode, zResp.StatusCode)
		}
		if got := zResp.Header.Get("Content-Encoding"); got != "gzip" {
			t.Errorf("GET %s accepting gzip: Content-Encoding %q, want gzip", p, got)
			continue
		}
		if plainResp.Header.Get("Content-Encoding") != "" {
			t.Errorf("GET %s accepting identity only: Content-Encoding %q", p, plainResp.Header.Get("Content-Encoding"))
		}
		if a, b := plainResp.Header.Get("Content-Type"), zResp.Header.Get("Content-Type"); a != b {
			t.Errorf("GET %s: Content-Type %q plain, %q gzipped", p, a, b)
		}
		zr, err := gzip.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, plain) {
			t.Errorf("GET %s: the gzipped body unzips to %d bytes (%v), want the %d plain ones", p, len(unzipped), err, len(plain))
		}
		if len(z) >= len(plain) {
			t.Errorf("GET %s: %d bytes gzipped, %d plain", p, len(z), len(plain))
		}
	}
}
