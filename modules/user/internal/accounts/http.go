package accounts

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// MaxPageSize bounds every list.
const MaxPageSize = 100

// httpHandler is the account API: each method reads a request, calls the
// use case and writes its answer; httpx.Errors turns failures into
// problems.
type httpHandler struct{ svc *Service }

// Routes mounts the user endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	h := httpHandler{svc: s}
	api.POST("/users", h.register)
	api.POST("/sessions", h.login)
	api.DELETE("/sessions/current", auth.RequireUser(), h.logout)
	api.GET("/users/me", auth.RequireUser(), h.me)
	api.PATCH("/users/me", auth.RequireUser(), h.updateProfile)
	api.PUT("/users/me/password", auth.RequireUser(), h.changePassword)
	api.GET("/users", auth.RequireRole(auth.RoleAdmin), h.listUsers)
	api.GET("/users/:id", auth.RequireUser(), h.getUser)
	api.PUT("/users/:id/roles", auth.RequireRole(auth.RoleAdmin), h.setRoles)
	api.POST("/users/:id/suspension", auth.RequireRole(auth.RoleAdmin), h.suspend)
	api.DELETE("/users/:id/suspension", auth.RequireRole(auth.RoleAdmin), h.reinstate)
}

func (h httpHandler) register(c *gin.Context) {
	var r Registration
	if err := httpx.DecodeJSON(c, &r); err != nil {
		httpx.Fail(c, err)
		return
	}
	u, err := h.svc.SignUp(c.Request.Context(), r, c.ClientIP())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/users/"+u.ID)
	c.JSON(http.StatusCreated, u)
}

func (h httpHandler) login(c *gin.Context) {
	var cr Credentials
	if err := httpx.DecodeJSON(c, &cr); err != nil {
		httpx.Fail(c, err)
		return
	}
	// A header may carry bytes that are not UTF-8, which PostgreSQL refuses
	// to store; the user agent is only a note, so drop them.
	userAgent := strings.ToValidUTF8(c.Request.UserAgent(), "")
	sess, err := h.svc.Login(c.Request.Context(), cr, c.ClientIP(), userAgent)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	h.setCookie(c, sess.Token, int(time.Until(sess.ExpiresAt).Seconds()))
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, sess)
}

func (h httpHandler) logout(c *gin.Context) {
	id := auth.MustIdentity(c)
	if err := h.svc.Logout(c.Request.Context(), id.Token); err != nil {
		httpx.Fail(c, err)
		return
	}
	h.setCookie(c, "", -1)
	c.Status(http.StatusNoContent)
}

func (h httpHandler) me(c *gin.Context) {
	u, err := h.svc.Me(c.Request.Context(), auth.MustIdentity(c))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (h httpHandler) getUser(c *gin.Context) {
	u, err := h.svc.GetUser(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (h httpHandler) listUsers(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 20, MaxPageSize)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := h.svc.ListUsers(c.Request.Context(), c.Query("q"), c.Query("cursor"), limit)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

type rolesRequest struct {
	Roles []string `json:"roles"`
}

func (h httpHandler) setRoles(c *gin.Context) {
	var req rolesRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	if req.Roles == nil {
		httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "roles", Message: "is required (an empty list removes every role)"}))
		return
	}
	u, err := h.svc.SetRoles(c.Request.Context(), auth.MustIdentity(c), c.Param("id"), req.Roles)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// setCookie sets (or, with maxAge < 0, clears) the session cookie:
// HttpOnly so scripts cannot read it, SameSite=Lax so other sites cannot
// send it on their forms; unsafe cross-site requests are refused as well.
func (h httpHandler) setCookie(c *gin.Context, token string, maxAge int) {
	c.SetSameSite(http.SameSiteLaxMode)
	c.SetCookie(auth.SessionCookie, token, maxAge, "/", "", h.svc.cfg.SecureCookies, true)
}
