package app

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/web"
)

// serveWebUI serves the web UI: its files, and index.html for the pages it
// draws itself (web.IsPage). Any other address a browser may open answers
// 404 with index.html too, whose router then shows the shop's not-found
// page. Under /api/, for other methods, and for a missing file (a name
// with an extension) the answer is a 404 problem.
func serveWebUI(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") || p == "/api" || (c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
		httpx.NoRoute(c)
		return
	}
	// The files carry no validators (embedded files have no dates), so ask
	// browsers to fetch them again rather than guess a freshness.
	c.Header("Cache-Control", "no-cache")
	if web.IsPage(p) {
		if !serveGzipped(c, "index.html") {
			c.FileFromFS("/", http.FS(web.Static()))
		}
		return
	}
	if st, err := fs.Stat(web.Static(), strings.TrimPrefix(p, "/")); err == nil && !st.IsDir() {
		if !serveGzipped(c, strings.TrimPrefix(p, "/")) {
			c.FileFromFS(p, http.FS(web.Static()))
		}
		return
	}
	if strings.Contains(path.Base(p), ".") {
		httpx.NoRoute(c) // a file that is not there: no page to show
		return
	}
	index, err := fs.ReadFile(web.Static(), "index.html")
	if err != nil {
		httpx.NoRoute(c)
		return
	}
	c.Data(http.StatusNotFound, "text/html; charset=utf-8", index)
}
