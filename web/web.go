// Package web is the browser front end: the storefront and the staff pages,
// plain HTML, CSS and JavaScript modules embedded in the binary, so that
// `go build` needs no Node toolchain and no CDN is ever involved.
package web

import (
	"embed"
	"io/fs"
	"strings"
)

//go:embed static
var static embed.FS

// Static returns the files served at /.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// The front end draws these pages itself (history-API routing); the server
// answers each with index.html, so a reload or a shared link opens the same
// page: the paths in pages, and whatever follows a prefix in pagePrefixes.
var (
	pages        = []string{"/", "/cart", "/checkout", "/login", "/register", "/orders", "/staff"}
	pagePrefixes = []string{"/orders/", "/products/", "/staff/"}
)

// IsPage reports whether path is a page of the front end, to be answered
// with index.html.
func IsPage(path string) bool {
	for _, p := range pages {
		if path == p {
			return true
		}
	}
	for _, p := range pagePrefixes {
		if strings.HasPrefix(path, p) && len(path) > len(p) {
			return true
		}
	}
	return false
}
