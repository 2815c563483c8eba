package orders

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

func (h httpHandler) ship(c *gin.Context) {
	var req Shipment
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	o, err := h.svc.Ship(c.Request.Context(), auth.MustIdentity(c), c.Param("id"), req)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

func (h httpHandler) deliver(c *gin.Context) {
	o, err := h.svc.Deliver(c.Request.Context(), auth.MustIdentity(c), c.Param("id"))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, o)
}

// shippingMethods lists the methods a customer may choose, pickup first;
// with them, the country codes a shipping address may name.
func (h httpHandler) shippingMethods(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"items": h.svc.methods, "currency": h.svc.cfg.Currency, "countries": countryCodes})
}
