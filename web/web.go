// Package web is the browser front end: the storefront and the staff pages,
// plain HTML, CSS and JavaScript modules embedded in the binary, so that
// `go build` needs no Node toolchain and no CDN is ever involved.
package web

import (
	"embed"
	"io/fs"
	"slices"
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

// pages are the pages the front end draws itself (history-API routing),
// as js/main.js registers them with route(); ":name" stands for one path
// segment. The server answers each with index.html, so a reload or a
// shared link opens the same page, and answers any other path with a 404.
// TestPages_AgreeWithTheFrontEndsRoutes keeps this list and main.js's one.
var pages = []string{
	"/",
	"/products/:id",
	"/cart",
	"/checkout",
	"/login",
	"/register",
	"/account",
	"/orders",
	"/orders/:id",
	"/staff",
	"/staff/products",
	"/staff/products/new",
	"/staff/products/:id",
	"/staff/orders",
	"/staff/bus",
	"/staff/users",
}

// Pages lists the front end's page patterns.
func Pages() []string { return slices.Clone(pages) }

// IsPage reports whether path is a page of the front end, to be answered
// with index.html: it matches a pattern segment for segment, exactly (no
// trailing slash, as the front end's router matches).
func IsPage(path string) bool {
	return slices.ContainsFunc(pages, func(pattern string) bool { return matchPage(pattern, path) })
}

func matchPage(pattern, path string) bool {
	want, got := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(want) != len(got) {
		return false
	}
	for i, w := range want {
		if strings.HasPrefix(w, ":") {
			if got[i] == "" {
				return false
			}
		} else if w != got[i] {
			return false
		}
	}
	return true
}
