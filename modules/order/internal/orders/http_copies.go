package orders

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// copyRoutes mounts the staff endpoints of the copies the module keeps:
// their state, and a backfill asked for by an operator.
func (h httpHandler) copyRoutes(api *gin.RouterGroup) {
	admin := auth.RequireRole(auth.RoleAdmin)
	api.GET("/orders/copies", admin, h.copies)
	api.POST("/orders/copies/:copy/backfill", admin, h.backfill)
}

func (h httpHandler) copies(c *gin.Context) {
	out, err := h.svc.Copies(c.Request.Context())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": out})
}

func (h httpHandler) backfill(c *gin.Context) {
	out, err := h.svc.Backfill(c.Request.Context(), c.Param("copy"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, out)
}
