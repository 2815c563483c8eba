package webtest

import (
	"context"
	"iter"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
)

// layoutShifts sums the layout shifts of a document that no input caused,
// the way Lighthouse's cumulative layout shift counts them, from before the
// page's own scripts run.
const layoutShifts = `window.__shifts = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shifts += e.value;
}).observe({ type: "layout-shift", buffered: true });`

// painted waits until the browser has painted what the page shows now.
const painted = `new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))`

// box is where an element is on the page.
type box struct{ Top, Height float64 }

// TestSteady_TheHomePageDoesNotMoveWhileItLoads loads the storefront on a
// phone, logged in (the longest header a shopper has), in three frames the
// browser paints: before the scripts run (held back), before the product
// list arrives (held back), and with the list. The header keeps its
// height, the list its place, and the layout shifts the page made sum to
// less than 0.1, Lighthouse's bar for a good page.
func TestSteady_TheHomePageDoesNotMoveWhileItLoads(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) {
		c.SeedDemo = true
		c.LoginPerClient = 1000
	})
	name := apptest.Unique("steady")
	if _, err := shop.CreateUser(context.Background(), name, name+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	s := b.newTab(t, "a shopper on a phone", shop.URL)
	s.open("/login")
	s.typeInto("#login-login", name)
	s.typeInto("#login-password", password+"\n")
	s.waitFor("the shopper to be logged in", `document.getElementById("signed-in-as") !== null`)
	s.do("emulate a phone", chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2)))

	ctx := s.ctx
	call := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := chromedp.Call(ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: layoutShifts})
	call("add the layout shift observer", err)
	next, stop := iter.Pull2(chromedp.Events(ctx, fetch.RequestPaused))
	defer stop()
	_, err = chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		// A pattern's "?" is any one character: escaped, it is the query's.
		{URLPattern: "*/js/main.js"}, {URLPattern: `*/api/v1/products\?*`},
	}})
	call("hold the scripts and the product list", err)
	defer func() { _, _ = chromedp.Call(ctx, fetch.Disable, cdp.Empty{}) }()

	// held waits for the request to url's path to be held, and returns a
	// func that lets it go. Any other request held meanwhile goes on at
	// once: one the page before was still making when holding began, say.
	held := func(path string) func() {
		t.Helper()
		var ev fetch.EventRequestPaused
		for {
			e, err, ok := next()
			if !ok || err != nil {
				t.Fatalf("waiting for %s to be requested: %v", path, err)
			}
			if strings.Contains(e.Request.URL, path) {
				ev = e
				break
			}
			_, err = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: e.RequestID})
			call("let "+e.Request.URL+" go", err)
		}
		return func() {
			t.Helper()
			_, err := chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
			call("let "+path+" go", err)
		}
	}
	frame := func(css string) (header, target box) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](painted, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
		call("wait for a paint", err)
		at := func(css string) box {
			return eval[box](s, `(() => { const r = document.querySelector(`+q(css)+`)?.getBoundingClientRect(); return r ? { Top: r.top, Height: r.height } : { Top: -1, Height: -1 }; })()`)
		}
		return at(".site-header"), at(css)
	}

	_, err = chromedp.Call(ctx, cdppage.Navigate, cdppage.NavigateParams{URL: shop.URL + "/"})
	call("open the storefront", err)
	release := held("/js/main.js")
	headerBefore, mainBefore := frame("#main")
	release()
	release = held("/api/v1/products")
	s.waitFor("the page to wait for its list", `document.getElementById("results") !== null`)
	headerWaiting, resultsWaiting := frame("#results")
	release()
	s.visible("#products li")
	headerAfter, resultsAfter := frame("#results")
	_, mainAfter := frame("#main")

	if headerBefore.Height != headerAfter.Height || headerWaiting.Height != headerAfter.Height {
		t.Errorf("the header is %.1f px high before the scripts run, %.1f px while the list loads and %.1f px with it; want one height",
			headerBefore.Height, headerWaiting.Height, headerAfter.Height)
	}
	if mainBefore.Top != mainAfter.Top {
		t.Errorf("the page's content starts at %.1f px before the scripts run and at %.1f px after", mainBefore.Top, mainAfter.Top)
	}
	if resultsWaiting.Top != resultsAfter.Top {
		t.Errorf("the product list's place is at %.1f px while it loads and at %.1f px with the list", resultsWaiting.Top, resultsAfter.Top)
	}
	if shift := eval[float64](s, `window.__shifts`); shift >= 0.1 {
		t.Errorf("the storefront's layout shifts sum to %.3f on a phone, want less than 0.1", shift)
	}
	s.shot("storefront-steady")
}
