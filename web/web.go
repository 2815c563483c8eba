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

// pages are the paths the front end draws itself (history-API routing):
// the server answers each with index.html, so a reload or a shared link opens
// the same page. Prefixes end in a slash.
var pages = []string{"/", "/cart", "/checkout", "/login", "/register", "/orders", "/orders/", "/products/", "/staff", "/staff/"}

// IsPage reports whether path is a page of the front end, to be answered
// with index.html.
func IsPage(path string) bool {
	for _, p := range pages {
		if path == p || (strings.HasSuffix(p, "/") && p != "/" && strings.HasPrefix(path, p) && len(path) > len(p)) {
			return true
		}
	}
	return false
}
