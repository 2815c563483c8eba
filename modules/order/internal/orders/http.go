package orders

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// httpHandler is the order API: each method reads a request, calls the
// use case and writes its answer; httpx.Errors turns failures into
// problems.
type httpHandler struct{ svc *Service }

// Routes mounts the order endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	h := httpHandler{svc: s}
	user := auth.RequireUser()
	api.POST("/orders", auth.RequireRole("customer"), httpx.LimitBody(maxPlaceOrderBytes), h.place)
	api.GET("/orders", user, h.list)
	api.GET("/orders/:id", user, h.get)
	api.POST("/orders/:id/cancel", user, h.cancel)
	h.copyRoutes(api)
	staff := auth.RequireRole(auth.RoleAdmin)
	api.POST("/orders/:id/shipment", staff, httpx.LimitBody(maxShipmentBytes), h.ship)
	api.POST("/orders/:id/delivery", staff, h.deliver)
	api.GET("/shipping-methods", h.shippingMethods)
	api.POST("/orders/:id/refunds", staff, httpx.LimitBody(maxPlaceOrderBytes), h.refund)
	api.POST("/orders/:id/returns", staff, httpx.LimitBody(maxPlaceOrderBytes), h.returned)
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

func (h httpHandler) place(c *gin.Context) {
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
	o, err := h.svc.Place(c.Request.Context(), auth.MustIdentity(c), req, key)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/orders/"+o.ID)
	c.JSON(http.StatusAccepted, o)
}

func (h httpHandler) list(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 20, MaxPageSize)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := h.svc.List(c.Request.Context(), auth.MustIdentity(c), c.Query("status"), c.Query("fulfilment"), c.Query("cursor"), limit)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (h httpHandler) get(c *gin.Context) {
	o, err := h.svc.Get(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (h httpHandler) cancel(c *gin.Context) {
	o, err := h.svc.Cancel(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, o)
}
