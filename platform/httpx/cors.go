package httpx

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"golang.org/x/net/idna"
)

// What a page on a listed origin may send and read (CORS). The request
// headers are the API's own: Authorization for a bearer token,
// Content-Type for JSON bodies, Idempotency-Key when placing an order and
// X-Request-ID to name a request; Content-Type is readable without asking.
const (
	corsAllowMethods  = "GET, HEAD, POST, PUT, PATCH, DELETE"
	corsAllowHeaders  = "Authorization, Content-Type, Idempotency-Key, " + RequestIDHeader
	corsExposeHeaders = "Location, Retry-After, WWW-Authenticate, " + RequestIDHeader
)

// CORSMaxAge is how long a browser may keep a preflight's answer: two
// hours, the most Chromium keeps one (Firefox would keep a day).
const CORSMaxAge = 7200

// ParseOrigins reads a comma-separated list of exact origins, such as
// "https://shop.example.com,http://localhost:3000": scheme (http or https),
// host and port only, as a browser sends them in its Origin header. A
// wildcard is refused: credentials go only to origins named one by one.
func ParseOrigins(raw string) ([]string, error) {
	var out []string
	for _, o := range strings.Split(raw, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
			return nil, fmt.Errorf("%q is not an origin: want scheme://host[:port] with nothing after it, such as https://shop.example.com", o)
		}
		if err := asciiHost(o, u); err != nil {
			return nil, err
		}
		if port := u.Port(); (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
			return nil, fmt.Errorf("%q: write the origin as the browser sends it, without its scheme's default port: %s://%s", o, u.Scheme, strings.ToLower(u.Hostname()))
		}
		if canonical := u.Scheme + "://" + strings.ToLower(u.Host); o != canonical {
			return nil, fmt.Errorf("%q: write the origin as the browser sends it: %s", o, canonical)
		}
		out = append(out, o)
	}
	return out, nil
}

// asciiHost refuses an origin whose host is not ASCII: browsers send an
// internationalised name in its punycode form (xn--…), so the Unicode
// form would never match. The error gives the form to write.
func asciiHost(raw string, u *url.URL) error {
	host := u.Hostname()
	if isASCII(host) {
		return nil
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return fmt.Errorf("%q: the host is not a valid internationalised name (%v); write the origin with its host in punycode (xn--…), as the browser sends it", raw, err)
	}
	origin := u.Scheme + "://" + ascii
	if port := u.Port(); port != "" {
		origin += ":" + port
	}
	return fmt.Errorf("%q: browsers send an internationalised host in punycode; write the origin as they send it: %s", raw, origin)
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// CORS lets pages on the listed origins call the API from a browser, with
// credentials (the session cookie, or an Authorization header): their
// preflight requests are answered here, with 204 and what may be sent,
// and their requests' answers say who may read them and which headers.
// An unlisted origin gets no CORS header at all, so the browser keeps its
// page from reading anything; its unsafe requests are refused by
// CrossOriginProtection, which must trust the same origins. With no origin
// listed, CORS adds nothing to any answer.
func CORS(origins ...string) gin.HandlerFunc {
	listed := make(map[string]bool, len(origins))
	for _, o := range origins {
		listed[o] = true
	}
	maxAge := strconv.Itoa(CORSMaxAge)
	return func(c *gin.Context) {
		if len(listed) == 0 {
			c.Next()
			return
		}
		h := c.Writer.Header()
		// Answers differ by Origin: a cache must keep them apart.
		h.Add("Vary", "Origin")
		origin := c.GetHeader("Origin")
		if !listed[origin] {
			c.Next()
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		if c.Request.Method == http.MethodOptions && c.GetHeader("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", maxAge)
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		c.Next()
	}
}

// CORSHeader reports whether name is a header CORS sets.
func CORSHeader(name string) bool {
	return strings.HasPrefix(http.CanonicalHeaderKey(name), "Access-Control-")
}
