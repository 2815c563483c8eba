package accounts

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

func (h httpHandler) updateProfile(c *gin.Context) {
	var p ProfileUpdate
	if err := httpx.DecodeJSON(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	u, err := h.svc.UpdateProfile(c.Request.Context(), auth.MustIdentity(c), p)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (h httpHandler) changePassword(c *gin.Context) {
	var p PasswordChange
	if err := httpx.DecodeJSON(c, &p); err != nil {
		httpx.Fail(c, err)
		return
	}
	if err := h.svc.ChangePassword(c.Request.Context(), auth.MustIdentity(c), p); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h httpHandler) suspend(c *gin.Context) {
	u, err := h.svc.Suspend(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}

func (h httpHandler) reinstate(c *gin.Context) {
	u, err := h.svc.Reinstate(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, u)
}
