// Package auth tells every module who is calling: an Identity (user id and
// roles) put on the request by a middleware that asks an Authenticator.
// The user module provides the Authenticator; no other module imports it.
package auth

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/httpx"
)

// RoleAdmin is the staff role every admin route requires.
const RoleAdmin = "admin"

// SessionCookie is the name of the HttpOnly session cookie.
const SessionCookie = "modshop_session"

// Identity is the authenticated caller.
type Identity struct {
	UserID   string
	Username string
	Roles    []string
	// Token is the presented session token, so the caller can revoke it.
	Token string
}

// HasRole reports whether the caller holds role.
func (i Identity) HasRole(role string) bool { return slices.Contains(i.Roles, role) }

// ErrInvalidToken means the token is unknown, expired or revoked.
var ErrInvalidToken = errors.New("invalid or expired session token")

// Authenticator resolves a session token to an identity.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Identity, error)
}

type ctxKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller, if the request was authenticated.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// rejectedKey marks a request whose token was refused, so that a route
// needing a caller can say why it has none.
const rejectedKey = "auth.token_rejected"

// Middleware authenticates requests that carry a token (Authorization:
// Bearer, or the session cookie) and puts the identity on the request
// context. A request without a valid token passes through anonymous, so a
// client holding a stale token can still log in again and use the public
// routes; a route that needs a caller then answers 401 saying the session
// has ended. A lookup that fails otherwise fails the request: httpx.Errors
// answers 503 with Retry-After when the database is away (db.IsUnavailable),
// never 401, so that a client does not drop a session that is still good.
func Middleware(a Authenticator) gin.HandlerFunc {
	return func(c *gin.Context) {
		token, present := tokenFrom(c)
		if !present {
			c.Next()
			return
		}
		id, err := a.Authenticate(c.Request.Context(), token)
		if errors.Is(err, ErrInvalidToken) {
			c.Set(rejectedKey, true)
			c.Next()
			return
		}
		if err != nil {
			httpx.Fail(c, err)
			return
		}
		id.Token = token
		c.Request = c.Request.WithContext(WithIdentity(c.Request.Context(), id))
		c.Next()
	}
}

func tokenFrom(c *gin.Context) (token string, present bool) {
	if h := c.GetHeader("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), true
		}
		return "", true // present but not ours: Authenticate("") fails
	}
	if ck, err := c.Cookie(SessionCookie); err == nil && ck != "" {
		return ck, true
	}
	return "", false
}

// RequireUser refuses anonymous callers with 401.
func RequireUser() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ok := FromContext(c.Request.Context()); !ok {
			refuseAnonymous(c)
			return
		}
		c.Next()
	}
}

// RequireRole refuses anonymous callers with 401 and callers without role
// with 403.
func RequireRole(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, ok := FromContext(c.Request.Context())
		if !ok {
			refuseAnonymous(c)
			return
		}
		if !id.HasRole(role) {
			httpx.Fail(c, httpx.Forbidden("this needs the "+role+" role"))
			return
		}
		c.Next()
	}
}

func refuseAnonymous(c *gin.Context) {
	if c.GetBool(rejectedKey) {
		c.Header("WWW-Authenticate", `Bearer realm="modshop", error="invalid_token"`)
		httpx.Fail(c, httpx.Unauthorized("the session token is invalid or has expired; log in again"))
		return
	}
	c.Header("WWW-Authenticate", `Bearer realm="modshop"`)
	httpx.Fail(c, httpx.Unauthorized("log in first: send a session token as Authorization: Bearer or the session cookie"))
}

// MustIdentity returns the caller of a route behind RequireUser.
func MustIdentity(c *gin.Context) Identity {
	id, ok := FromContext(c.Request.Context())
	if !ok {
		panic("auth: MustIdentity on a route without RequireUser")
	}
	return id
}
