package httpx

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

const (
	shopURL    = "http://shop.example"
	storefront = "https://store.example"
	stranger   = "https://evil.example"
)

// corsEngine is the shop's middleware order around CORS: a GET and a POST
// on one path, answering 200 (the POST a 422 when asked), and whether the
// handler ran.
func corsEngine(origins ...string) (*gin.Engine, *bool) {
	log, _ := quietLog()
	ran := new(bool)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.Use(RequestIDs(), Recover(log), SecurityHeaders(), CORS(origins...), Errors(log), LimitBody(1<<20),
		CrossOriginProtection(origins...))
	r.NoRoute(NoRoute)
	r.NoMethod(NoMethod)
	h := func(c *gin.Context) {
		*ran = true
		if c.Query("fail") != "" {
			Fail(c, Invalid(FieldError{Field: "name", Message: "is required"}))
			return
		}
		c.Header("Location", "/api/v1/things/1")
		c.JSON(http.StatusOK, gin.H{"ok": true})
	}
	r.GET("/api/v1/things", h)
	r.POST("/api/v1/things", h)
	return r, ran
}

func request(method, target string, headers ...string) *http.Request {
	req := httptest.NewRequest(method, shopURL+target, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

func preflight(origin, method string) *http.Request {
	return request(http.MethodOptions, "/api/v1/things", "Origin", origin,
		"Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
}

// corsHeaders lists the Access-Control-* headers of an answer.
func corsHeaders(h http.Header) []string {
	var out []string
	for k := range h {
		if CORSHeader(k) {
			out = append(out, k+": "+h.Get(k))
		}
	}
	slices.Sort(out)
	return out
}

// list reads a comma-separated header as a set, case-insensitively.
func list(h http.Header, name string) map[string]bool {
	out := map[string]bool{}
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			out[strings.ToLower(strings.TrimSpace(part))] = true
		}
	}
	return out
}

func TestCORS_NothingListedAddsNothing(t *testing.T) {
	t.Parallel()
	r, _ := corsEngine()
	for name, req := range map[string]*http.Request{
		"GET from another origin": request(http.MethodGet, "/api/v1/things", "Origin", storefront, "Sec-Fetch-Site", "cross-site"),
		"a preflight":             preflight(storefront, http.MethodPost),
	} {
		w := serve(r, req)
		if got := corsHeaders(w.Header()); len(got) > 0 || w.Header().Get("Vary") != "" {
			t.Errorf("%s: CORS headers %v, Vary %q; want none, as before CORS existed", name, got, w.Header().Get("Vary"))
		}
	}
	// A preflight is what it always was: a method the path does not have.
	if w := serve(r, preflight(storefront, http.MethodPost)); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("a preflight with nothing listed: %d, want 405 as before", w.Code)
	}
	w := serve(r, request(http.MethodPost, "/api/v1/things", "Origin", storefront, "Sec-Fetch-Site", "cross-site"))
	if w.Code != http.StatusForbidden {
		t.Errorf("a cross-site POST with nothing listed: %d, want 403", w.Code)
	}
}

func TestCORS_PreflightFromAListedOriginIsAnsweredAndCached(t *testing.T) {
	t.Parallel()
	r, ran := corsEngine(storefront, "http://localhost:3000")
	w := serve(r, preflight(storefront, http.MethodPost))
	if w.Code != http.StatusNoContent || *ran {
		t.Fatalf("preflight: %d (handler ran: %v), want 204 answered before any handler", w.Code, *ran)
	}
	h := w.Header()
	if got := h.Get("Access-Control-Allow-Origin"); got != storefront {
		t.Errorf("Access-Control-Allow-Origin = %q, want the listed origin itself", got)
	}
	if h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Error("no Access-Control-Allow-Credentials: true: the page could not send its cookie")
	}
	methods := list(h, "Access-Control-Allow-Methods")
	for _, m := range []string{"get", "post", "put", "patch", "delete"} {
		if !methods[m] {
			t.Errorf("Access-Control-Allow-Methods %v lacks %s", methods, m)
		}
	}
	headers := list(h, "Access-Control-Allow-Headers")
	for _, name := range []string{"authorization", "content-type", "idempotency-key", "x-request-id"} {
		if !headers[name] {
			t.Errorf("Access-Control-Allow-Headers %v lacks %s", headers, name)
		}
	}
	if h.Get("Access-Control-Max-Age") != "7200" {
		t.Errorf("Access-Control-Max-Age = %q, want the preflight cached (7200)", h.Get("Access-Control-Max-Age"))
	}
	if !list(h, "Vary")["origin"] {
		t.Errorf("Vary = %q lacks Origin", h.Values("Vary"))
	}
}

func TestCORS_UnlistedOriginGetsNoCORSAndItsUnsafeRequestsAreRefused(t *testing.T) {
	t.Parallel()
	r, ran := corsEngine(storefront)
	w := serve(r, preflight(stranger, http.MethodPost))
	if got := corsHeaders(w.Header()); len(got) > 0 || w.Code == http.StatusNoContent {
		t.Errorf("preflight from an unlisted origin: %d with %v; want no CORS answer", w.Code, got)
	}
	w = serve(r, request(http.MethodGet, "/api/v1/things", "Origin", stranger, "Sec-Fetch-Site", "cross-site"))
	if got := corsHeaders(w.Header()); len(got) > 0 {
		t.Errorf("GET from an unlisted origin carries %v: its page could read the answer", got)
	}
	if !list(w.Header(), "Vary")["origin"] {
		t.Error("an answer without CORS headers lacks Vary: Origin: a cache could hand it to a listed origin")
	}
	for name, req := range map[string]*http.Request{
		"a browser's cross-site POST": request(http.MethodPost, "/api/v1/things", "Origin", stranger, "Sec-Fetch-Site", "cross-site"),
		"a same-site POST":            request(http.MethodPost, "/api/v1/things", "Origin", "https://other.store.example", "Sec-Fetch-Site", "same-site"),
		"an old browser's POST":       request(http.MethodPost, "/api/v1/things", "Origin", stranger),
	} {
		*ran = false
		w := serve(r, req)
		if w.Code != http.StatusForbidden || *ran {
			t.Errorf("%s: %d (handler ran: %v), want 403 before the handler", name, w.Code, *ran)
			continue
		}
		problemOf(t, w)
		if got := corsHeaders(w.Header()); len(got) > 0 {
			t.Errorf("%s: the 403 carries %v", name, got)
		}
	}
}

func TestCORS_ListedOriginCallsWithCredentials(t *testing.T) {
	t.Parallel()
	r, ran := corsEngine(storefront)
	w := serve(r, request(http.MethodGet, "/api/v1/things", "Origin", storefront, "Sec-Fetch-Site", "cross-site",
		"Cookie", "modshop_session=x"))
	h := w.Header()
	if w.Code != http.StatusOK || h.Get("Access-Control-Allow-Origin") != storefront || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("credentialed GET from the listed origin: %d %v", w.Code, corsHeaders(h))
	}
	exposed := list(h, "Access-Control-Expose-Headers")
	for _, name := range []string{"location", "retry-after", "x-request-id"} {
		if !exposed[name] {
			t.Errorf("Access-Control-Expose-Headers %v lacks %s", exposed, name)
		}
	}
	// Its unsafe requests pass the CSRF check, from a modern browser and
	// from an old one alike; an error answer is readable by its page too.
	for name, req := range map[string]*http.Request{
		"cross-site":  request(http.MethodPost, "/api/v1/things", "Origin", storefront, "Sec-Fetch-Site", "cross-site"),
		"old browser": request(http.MethodPost, "/api/v1/things", "Origin", storefront),
	} {
		*ran = false
		if w := serve(r, req); w.Code != http.StatusOK || !*ran {
			t.Errorf("%s POST from the listed origin: %d (handler ran: %v), want it through", name, w.Code, *ran)
		}
	}
	w = serve(r, request(http.MethodPost, "/api/v1/things?fail=1", "Origin", storefront, "Sec-Fetch-Site", "cross-site"))
	if w.Code != http.StatusUnprocessableEntity || w.Header().Get("Access-Control-Allow-Origin") != storefront {
		t.Errorf("a 422 to the listed origin: %d %v; its page must be able to read the problem", w.Code, corsHeaders(w.Header()))
	}
}

func TestParseOrigins(t *testing.T) {
	t.Parallel()
	got, err := ParseOrigins(" https://shop.example.com, http://localhost:3000 ,,http://[::1]:8081,http://127.0.0.1:5173")
	want := []string{"https://shop.example.com", "http://localhost:3000", "http://[::1]:8081", "http://127.0.0.1:5173"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ParseOrigins = %v, %v; want %v", got, err, want)
	}
	if got, err := ParseOrigins(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v; want none", got, err)
	}
	for _, bad := range []string{
		"*", "null", "shop.example.com", "ftp://shop.example.com", "https://shop.example.com/",
		"https://shop.example.com/store", "https://shop.example.com?x=1", "https://user@shop.example.com",
		"https://Shop.Example.com", "https://shop.example.com:443", "http://shop.example.com:80", "https://",
	} {
		if _, err := ParseOrigins("https://fine.example," + bad); err == nil {
			t.Errorf("ParseOrigins took %q", bad)
		}
	}
}

// Browsers send an internationalised host in its punycode form, so a
// Unicode origin in the list could never match: it is refused, and the
// error gives the form to write.
func TestParseOrigins_RefusesAUnicodeHostAndGivesItsPunycodeForm(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://bücher.example":           "https://xn--bcher-kva.example",
		"https://shop.bücher.example:8443": "https://shop.xn--bcher-kva.example:8443",
		"https://b%C3%BCcher.example":      "https://xn--bcher-kva.example",
	} {
		_, err := ParseOrigins(raw)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "punycode") {
			t.Errorf("ParseOrigins(%q): %v; want it refused, saying to write %s (punycode)", raw, err, want)
		}
	}
	if got, err := ParseOrigins("https://xn--bcher-kva.example"); err != nil || !slices.Equal(got, []string{"https://xn--bcher-kva.example"}) {
		t.Errorf("the punycode form: %v, %v", got, err)
	}
}
