package httpx

import (
	"fmt"
	"strconv"

	"github.com/gin-gonic/gin"
)

// PageLimit reads a list's limit query parameter: def when the request has
// none, otherwise a whole number from 1 to max. A limit that is present but
// empty (`?limit=`) is not a number either: the OpenAPI document types it as
// an integer, so it is refused like any other non-number.
func PageLimit(c *gin.Context, def, max int) (int, error) {
	raw, present := c.GetQuery("limit")
	if !present {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > max {
		return 0, Invalid(FieldError{Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", max)})
	}
	return n, nil
}
