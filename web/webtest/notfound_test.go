package webtest

import (
	"net/http"
	"testing"

	"github.com/modshop/modshop/app/apptest"
)

// TestNotFoundPageInTheBrowser opens addresses the shop has no page for, as
// a person typing or following a stale link would: each shows the shop's
// own not-found page (in its header and layout, with a way back), and the
// only thing the console reports is the 404 of that address itself.
func TestNotFoundPageInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t)
	tb := b.newTab(t, "a visitor", shop.URL)
	for _, path := range []string{"/no-such-page", "/products", "/staff/", "/cart/"} {
		t.Run(path, func(t *testing.T) {
			v := tb.as(t)
			// The browser logs the document's 404 as a failed load: that
			// answer is the point here, so it is expected, once, for this
			// address; any other console error still fails the test.
			v.expectFailure(path, http.StatusNotFound)
			v.open(path)
			if got := v.text("main h1"); got != "Not found" {
				t.Errorf("%s shows the heading %q, want Not found\n%s", path, got, v.describe())
			}
			if got := eval[string](v, `document.title`); got != "Not found · modshop" {
				t.Errorf("%s: title %q", path, got)
			}
			if got := v.path(); got != path {
				t.Errorf("the address changed to %s, want it kept (%s)", got, path)
			}
			v.visible(`#site-nav a[href="/"]`) // the shop's own header, not a bare error
		})
	}
	t.Run("back to the shop", func(t *testing.T) {
		v := tb.as(t)
		v.click(`main a[href="/"]`)
		v.waitFor("the storefront", `location.pathname === "/" && document.getElementById("search-q") !== null`)
	})
}
