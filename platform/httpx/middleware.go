package httpx

import (
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

const requestIDKey = "httpx.request_id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestIDHeader carries the request id in and out.
const RequestIDHeader = "X-Request-ID"

// RequestIDs gives every request an id: the client's X-Request-ID when it is
// a sane token, a new UUID otherwise. It is echoed in the response.
func RequestIDs() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		c.Set(requestIDKey, id)
		c.Header(RequestIDHeader, id)
		c.Next()
	}
}

// RequestID returns the id RequestIDs gave this request.
func RequestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// AccessLog writes one structured line per request.
func AccessLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case status == http.StatusServiceUnavailable:
			level = slog.LevelWarn // an outage, or a refusal to take more: nothing broke
		case status >= 500:
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "http request",
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.String("route", c.FullPath()),
			slog.Int("status", status),
			slog.Int("bytes", c.Writer.Size()),
			slog.Duration("duration", time.Since(start)),
			slog.String("client", c.ClientIP()),
			slog.String("request_id", RequestID(c)),
		)
	}
}

// Recover turns a panic into a logged 500 problem instead of a dropped
// connection. http.ErrAbortHandler is re-raised: it means "abort quietly".
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler {
				panic(rec)
			}
			log.ErrorContext(c.Request.Context(), "panic in handler",
				"panic", rec, "path", c.Request.URL.Path, "request_id", RequestID(c), "stack", string(debug.Stack()))
			if !c.Writer.Written() {
				WriteProblem(c, NewProblem(http.StatusInternalServerError, "internal", "something went wrong on our side; the request id helps us find it"))
			}
			c.Abort()
		}()
		c.Next()
	}
}

// LimitBody caps a route's request bodies at max bytes, below the
// server's body limit: a longer body is a 413. A body received whole
// (InFlight.Middleware) has its length, so it is refused here at once;
// another is cut off at the limit, and DecodeJSON reports it.
func LimitBody(max int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength > max {
			WriteProblem(c, BodyTooLarge(max))
			c.Abort()
			return
		}
		if _, received := c.Request.Body.(*receivedBody); !received {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max)
		}
		c.Next()
	}
}

// ContentSecurityPolicy is what every page must satisfy: everything from
// this origin, nothing inline, nothing framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// SecurityHeaders sets the headers a browser needs to protect our users.
func SecurityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		c.Next()
	}
}

// CrossOriginProtection refuses unsafe cross-site requests from browsers
// (the CSRF defence for cookie sessions), using Go's Sec-Fetch-Site and
// Origin checks. Clients that are not browsers send neither header and pass.
// Pages on the trusted origins (as ParseOrigins reads them; those CORS
// lets in) pass as well.
func CrossOriginProtection(trusted ...string) gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := cop.AddTrustedOrigin(o); err != nil {
			panic("httpx: trusted origin not read by ParseOrigins: " + err.Error())
		}
	}
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			WriteProblem(c, Forbidden("cross-site request refused"))
			c.Abort()
			return
		}
		c.Next()
	}
}
