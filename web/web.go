// Package web is the browser front end, embedded in the binary so that
// `go build` needs no Node toolchain and no CDN is ever involved.
package web

import (
	"embed"
	"io/fs"
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
