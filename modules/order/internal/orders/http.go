package orders

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// Routes mounts the order endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	user := auth.RequireUser()
	api.POST("/orders", user, httpx.LimitBody(maxPlaceOrderBytes), s.handlePlace)
	api.GET("/orders", user, s.handleList)
	api.GET("/orders/:id", user, s.handleGet)
	api.POST("/orders/:id/cancel", user, s.handleCancel)
}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 100 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func (s *Service) handlePlace(c *gin.Context) {
	key := c.GetHeader("Idempotency-Key")
	if key != "" && !validKey(key) {
		httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 100 visible ASCII characters"}))
		return
	}
	var req PlaceOrder
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	o, err := s.Place(c.Request.Context(), auth.MustIdentity(c), req, key)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/orders/"+o.ID)
	c.JSON(http.StatusAccepted, o)
}

func (s *Service) handleList(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 20, MaxPageSize)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := s.List(c.Request.Context(), auth.MustIdentity(c), c.Query("status"), c.Query("cursor"), limit)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Service) handleGet(c *gin.Context) {
	o, err := s.Get(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (s *Service) handleCancel(c *gin.Context) {
	o, err := s.Cancel(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, o)
}
