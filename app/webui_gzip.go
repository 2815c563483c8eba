package app

import (
	"bytes"
	"compress/gzip"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/web"
)

// gzippedWebUI is the web UI's text files (HTML, CSS, JavaScript, SVG)
// gzipped once, by path: about a quarter of their size, which a phone on a
// slow network waits for before the first page shows (docs/adr/0036).
var gzippedWebUI = sync.OnceValue(func() map[string][]byte {
	out := map[string][]byte{}
	err := fs.WalkDir(web.Static(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !compressible(name) {
			return err
		}
		b, err := fs.ReadFile(web.Static(), name)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
		if _, err := zw.Write(b); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		out[name] = buf.Bytes()
		return nil
	})
	if err != nil { // embedded files do not fail to read; if they did, they go out as they are
		return map[string][]byte{}
	}
	return out
})

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".html", ".css", ".js", ".svg":
		return true
	}
	return false
}

// serveGzipped answers with the gzipped copy of the web UI's file name
// when the browser accepts gzip and there is one; it reports whether it
// answered.
func serveGzipped(c *gin.Context, name string) bool {
	gz, ok := gzippedWebUI()[name]
	if !ok {
		return false
	}
	c.Header("Vary", "Accept-Encoding") // a cache keeps both answers apart
	if !strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
		return false
	}
	typ := mime.TypeByExtension(path.Ext(name))
	if typ == "" {
		typ = "application/octet-stream"
	}
	c.Header("Content-Encoding", "gzip")
	c.Data(http.StatusOK, typ, gz)
	return true
}
