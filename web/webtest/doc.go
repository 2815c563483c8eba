// Package webtest tests the browser front end (package web) the way people
// use it: a whole shop on a real PostgreSQL and a real bus, driven through
// headless Chromium with chromedp. The tests fail on any console error or
// uncaught exception on the pages they visit, and save screenshots of the
// main pages at phone and desktop widths into screenshots/ (git-ignored).
//
// Chromium must be installed (scripts/ensure-chromium does it; make test
// calls it). Without it the tests fail, unless MODSHOP_SKIP_BROWSER=1 says
// to skip them.
package webtest
