package app

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/web"
)

// serveWebUI serves the web UI: its files, and index.html for the pages it
// draws itself (/products/…, /orders/…, /staff/…); anything else, and every
// unknown API path, is a 404 problem.
func serveWebUI(c *gin.Context) {
	p := c.Request.URL.Path
	if strings.HasPrefix(p, "/api/") || (c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
		httpx.NoRoute(c)
		return
	}
	file := p
	if web.IsPage(p) {
		file = "/"
	} else if st, err := fs.Stat(web.Static(), strings.TrimPrefix(p, "/")); err != nil || st.IsDir() {
		httpx.NoRoute(c)
		return
	}
	// The files carry no validators (embedded files have no dates), so ask
	// browsers to fetch them again rather than guess a freshness.
	c.Header("Cache-Control", "no-cache")
	c.FileFromFS(file, http.FS(web.Static()))
}
