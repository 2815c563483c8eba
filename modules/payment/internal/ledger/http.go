package ledger

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// httpHandler is the payment API: each method reads a request, calls the
// use case and writes its answer; httpx.Errors turns failures into
// problems.
type httpHandler struct{ svc *Service }

// Routes mounts the payment endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	h := httpHandler{svc: s}
	api.GET("/payments", auth.RequireUser(), h.orderPayments)
}

func (h httpHandler) orderPayments(c *gin.Context) {
	who, _ := auth.FromContext(c.Request.Context())
	payments, err := h.svc.OrderPayments(c.Request.Context(), who, c.Query("order_id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": payments})
}
