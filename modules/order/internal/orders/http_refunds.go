package orders

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// idempotencyKey reads the Idempotency-Key header; ok is false, the
// problem written, when it is malformed, or missing where required.
func idempotencyKey(c *gin.Context, required bool) (string, bool) {
	key := c.GetHeader("Idempotency-Key")
	switch {
	case key == "" && required:
		httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "Idempotency-Key", Message: "is required: a new key for each refund, the same key to retry one"}))
		return "", false
	case key != "" && !validKey(key):
		httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 100 visible ASCII characters"}))
		return "", false
	}
	return key, true
}

func (h httpHandler) refund(c *gin.Context) {
	key, ok := idempotencyKey(c, true)
	if !ok {
		return
	}
	var req RefundRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	o, err := h.svc.Refund(c.Request.Context(), auth.MustIdentity(c), c.Param("id"), req, key)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, o)
}

func (h httpHandler) returned(c *gin.Context) {
	key, ok := idempotencyKey(c, false)
	if !ok {
		return
	}
	var req ReturnRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		httpx.Fail(c, err)
		return
	}
	o, err := h.svc.Return(c.Request.Context(), auth.MustIdentity(c), c.Param("id"), req, key)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, o)
}
