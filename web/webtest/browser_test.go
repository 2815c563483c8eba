package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// waitTimeout bounds every wait for the page; generous, because the race
// detector and a busy two-core machine slow the shop down.
const waitTimeout = 30 * time.Second

// Widths of the screenshots.
const (
	phoneWidth   = 390
	desktopWidth = 1280
)

// browser is the one headless Chromium of the package's tests.
type browser struct {
	ctx context.Context
}

// chromiumPath finds the browser: MODSHOP_CHROMIUM, Debian's
// /usr/bin/chromium, or chromium on the PATH.
func chromiumPath() (string, error) {
	if p := os.Getenv("MODSHOP_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("MODSHOP_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium", nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium found")
}

// startBrowser starts Chromium for the whole test. Without one the test
// fails, unless MODSHOP_SKIP_BROWSER=1 asks to skip the browser tests.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	if os.Getenv("MODSHOP_SKIP_BROWSER") == "1" {
		t.Skip("MODSHOP_SKIP_BROWSER=1: THE BROWSER TESTS DID NOT RUN; the web UI is untested in this run")
	}
	path, err := chromiumPath()
	if err != nil {
		t.Fatalf("%v: install it with scripts/ensure-chromium (make test does), point MODSHOP_CHROMIUM at one, "+
			"or set MODSHOP_SKIP_BROWSER=1 to skip the browser tests", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(desktopWidth, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &browser{ctx: ctx}
}

// tab is one person's browser window: its own browser context, so its own
// cookies and localStorage. It records every console error, uncaught
// exception and error entry of the browser log.
type tab struct {
	t *testing.T // the (sub)test using the tab now
	*tabState
}

type tabState struct {
	name string
	ctx  context.Context
	base string

	mu       sync.Mutex
	problems []string
	expected []expectedFailure
	checked  int
}

// as is the tab used by the subtest t; its console is checked when t ends.
func (tb *tab) as(t *testing.T) *tab {
	c := &tab{t: t, tabState: tb.tabState}
	t.Cleanup(c.checkConsole)
	return c
}

// expectedFailure is a request the test makes fail on purpose (to see the
// error shown); the browser logs it as a network error, which is then fine.
type expectedFailure struct {
	path   string
	status int
	seen   bool
}

// newTab opens a tab for a person (name is for messages) on the shop at
// base. Its console is checked when the test ends.
func (b *browser) newTab(t *testing.T, name, base string) *tab {
	t.Helper()
	tb := &tab{t: t, tabState: &tabState{name: name, base: base}}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(tb.listen))
	tb.ctx = ctx
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(desktopWidth, 900)); err != nil {
		cancel()
		t.Fatalf("open a tab for %s: %v", name, err)
	}
	t.Cleanup(func() {
		tb.checkConsole()
		cancel()
	})
	return tb
}

var statusInLog = regexp.MustCompile(`status of (\d{3})`)

// listen runs in the tab's event loop: it only records.
func (tb *tabState) listen(ev any) {
	var problem string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		parts := []string{}
		for _, a := range ev.Args {
			if a.Value != nil {
				parts = append(parts, string(a.Value))
			} else {
				parts = append(parts, a.Description)
			}
		}
		problem = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			desc += " " + d.Exception.Description
		}
		problem = fmt.Sprintf("uncaught exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, desc)
	case *cdplog.EventEntryAdded:
		e := ev.Entry
		if e.Level != cdplog.EntryLevelError {
			return
		}
		if e.Source == cdplog.EntrySourceNetwork && tb.isExpected(e.URL, e.Text) {
			return
		}
		problem = fmt.Sprintf("browser log (%s) %s: %s", e.Source, e.URL, e.Text)
	default:
		return
	}
	tb.mu.Lock()
	tb.problems = append(tb.problems, problem)
	tb.mu.Unlock()
}

func (tb *tabState) isExpected(url, text string) bool {
	m := statusInLog.FindStringSubmatch(text)
	if m == nil {
		return false
	}
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for i := range tb.expected {
		e := &tb.expected[i]
		if !e.seen && fmt.Sprint(e.status) == m[1] && strings.HasSuffix(strings.SplitN(url, "?", 2)[0], e.path) {
			e.seen = true
			return true
		}
	}
	return false
}

// expectFailure says the next request to path (a suffix of the URL) answers
// status on purpose: the browser's "failed to load resource" log line for it
// is not a problem.
func (tb *tabState) expectFailure(path string, status int) {
	tb.mu.Lock()
	tb.expected = append(tb.expected, expectedFailure{path: path, status: status})
	tb.mu.Unlock()
}

// checkConsole fails the test for each console problem not reported yet.
func (tb *tab) checkConsole() {
	tb.t.Helper()
	// A round trip: every event the browser sent before its answer has been
	// handed to listen by then.
	_, _ = chromedp.Run(tb.ctx, chromedp.Evaluate[int](`1`))
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, p := range tb.problems[tb.checked:] {
		tb.t.Errorf("%s's browser console: %s", tb.name, p)
	}
	tb.checked = len(tb.problems)
}

// do runs actions, failing the test with what on error.
func (tb *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %s: %v\n%s", tb.name, what, err, tb.describe())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("%s: evaluate %s: %v", tb.name, expr, err)
	}
	return v
}

// describe is what the page shows, for failure messages.
func (tb *tab) describe() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + (document.querySelector("main")?.innerText ?? "").slice(0, 1500)`))
	if err != nil {
		return "(the page could not be read: " + err.Error() + ")"
	}
	return "the page at " + s
}

// q quotes s as a JavaScript string literal.
func q(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitFor waits until the JavaScript expression is truthy.
func (tb *tab) waitFor(what, expr string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		tb.t.Fatalf("%s: waiting for %s: %v\n%s", tb.name, what, err, tb.describe())
	}
}

// idle waits until the page has drawn itself (main is not busy).
func (tb *tab) idle() {
	tb.t.Helper()
	tb.waitFor("the page to load", `document.readyState === "complete" && !document.getElementById("main").hasAttribute("aria-busy")`)
}

// open loads path as a new document, as typing the address would.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.do("open "+path, chromedp.Navigate(tb.base+path))
	tb.idle()
}

// visible waits until an element matching css is shown.
func (tb *tab) visible(css string) {
	tb.t.Helper()
	tb.waitFor(css+" to show", fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e && e.offsetParent !== null; })()`, q(css)))
}

// gone waits until no element matches css.
func (tb *tab) gone(css string) {
	tb.t.Helper()
	tb.waitFor(css+" to go", fmt.Sprintf(`document.querySelector(%s) === null`, q(css)))
}

// click clicks the element matching css, as a mouse would.
func (tb *tab) click(css string) {
	tb.t.Helper()
	tb.visible(css)
	tb.do("click "+css, chromedp.Click(chromedp.CSS(css)))
}

// typeInto empties the field matching css and types text (keys; "\n"
// presses Enter, which submits a form).
func (tb *tab) typeInto(css, text string) {
	tb.t.Helper()
	tb.visible(css)
	eval[bool](tb, fmt.Sprintf(`(() => { const e = document.querySelector(%s); e.value = ""; return true; })()`, q(css)))
	tb.do("type into "+css, chromedp.SendKeys(chromedp.CSS(css), text))
}

// choose picks value in the <select> matching css, as keyboard or mouse
// would: the change event fires.
func (tb *tab) choose(css, value string) {
	tb.t.Helper()
	tb.visible(css)
	ok := eval[bool](tb, fmt.Sprintf(`(() => {
		const s = document.querySelector(%s);
		if (![...s.options].some((o) => o.value === %s)) return false;
		s.focus(); s.value = %s; s.dispatchEvent(new Event("change", { bubbles: true }));
		return true; })()`, q(css), q(value), q(value)))
	if !ok {
		tb.t.Fatalf("%s: %s has no option %q", tb.name, css, value)
	}
}

// text is the text of the first element matching css ("" if none).
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`(document.querySelector(%s)?.textContent ?? "").replace(/\s+/g, " ").trim()`, q(css)))
}

// texts are the texts of every element matching css.
func (tb *tab) texts(css string) []string {
	tb.t.Helper()
	return eval[[]string](tb, fmt.Sprintf(`[...document.querySelectorAll(%s)].map((e) => e.textContent.replace(/\s+/g, " ").trim())`, q(css)))
}

// attr is an attribute of the first element matching css.
func (tb *tab) attr(css, name string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`document.querySelector(%s)?.getAttribute(%s) ?? ""`, q(css), q(name)))
}

// path is the page's path and query.
func (tb *tab) path() string {
	tb.t.Helper()
	return eval[string](tb, `location.pathname + location.search`)
}

// screenshots is where shot saves: screenshots/ at the top of the repository
// (git-ignored), or MODSHOP_SCREENSHOTS.
func screenshots(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MODSHOP_SCREENSHOTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "screenshots")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// shot saves the whole page as name-phone.png (390 px wide, as a phone)
// and name-desktop.png (1280 px), for a person to look at.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := screenshots(tb.t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	// A person looks at the page, not at the last toast or focus ring.
	eval[bool](tb, `(() => { document.getElementById("toast").classList.remove("shown"); document.activeElement?.blur(); return true; })()`)
	for _, size := range []struct {
		suffix string
		width  int64
		mobile bool
	}{{"phone", phoneWidth, true}, {"desktop", desktopWidth, false}} {
		emulate := chromedp.EmulateViewport(size.width, 900)
		if size.mobile {
			emulate = chromedp.EmulateViewport(size.width, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulateScale(2))
		}
		tb.do("resize for "+name, emulate, chromedp.Sleep(150*time.Millisecond))
		ctx, cancel := context.WithTimeout(tb.ctx, waitTimeout)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			tb.t.Fatalf("%s: screenshot %s: %v", tb.name, name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+"-"+size.suffix+".png"), png, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.do("restore the window", chromedp.EmulateViewport(desktopWidth, 900))
}
