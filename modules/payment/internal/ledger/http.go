package ledger

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// Routes mounts the payment endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	api.GET("/payments", auth.RequireUser(), s.handleOrderPayments)
}

func (s *Service) handleOrderPayments(c *gin.Context) {
	who, _ := auth.FromContext(c.Request.Context())
	payments, err := s.OrderPayments(c.Request.Context(), who, c.Query("order_id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": payments})
}
