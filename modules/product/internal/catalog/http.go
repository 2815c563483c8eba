package catalog

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// httpHandler is the catalog API: each method reads a request, calls the
// use case and writes its answer; httpx.Errors turns failures into
// problems.
type httpHandler struct{ svc *Service }

// Routes mounts the catalog endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	h := httpHandler{svc: s}
	admin := auth.RequireRole(auth.RoleAdmin)
	api.GET("/categories", h.categories)
	api.POST("/categories", admin, h.createCategory)
	api.GET("/products", h.list)
	api.GET("/products/:id", h.get)
	api.POST("/products", admin, h.create)
	api.PATCH("/products/:id", admin, h.update)
	api.POST("/products/:id/stock", admin, h.changeStock)
	api.POST("/products/:id/images", admin, httpx.LimitBody(MaxImageBytes), h.addImage)
	api.GET("/products/:id/images/:image_id", h.image)
	api.PATCH("/products/:id/images/:image_id", admin, h.changeImage)
	api.DELETE("/products/:id/images/:image_id", admin, h.deleteImage)
}

func isStaff(c *gin.Context) bool {
	id, ok := auth.FromContext(c.Request.Context())
	return ok && id.HasRole(auth.RoleAdmin)
}

func (h httpHandler) categories(c *gin.Context) {
	cats, err := h.svc.Categories(c.Request.Context())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": cats})
}

func (h httpHandler) createCategory(c *gin.Context) {
	var in NewCategory
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	cat, err := h.svc.CreateCategory(c.Request.Context(), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, cat)
}

func (h httpHandler) list(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 20, MaxPageSize)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := h.svc.List(c.Request.Context(), ListRequest{Q: c.Query("q"), Category: c.Query("category"), Sort: c.Query("sort"),
		Cursor: c.Query("cursor"), Limit: limit, Staff: isStaff(c), WithHidden: c.Query("include_inactive") == "true"})
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (h httpHandler) get(c *gin.Context) {
	p, err := h.svc.Product(c.Request.Context(), c.Param("id"), isStaff(c))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (h httpHandler) create(c *gin.Context) {
	var in NewProduct
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := h.svc.CreateProduct(c.Request.Context(), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/products/"+p.ID)
	c.JSON(http.StatusCreated, p)
}

func (h httpHandler) update(c *gin.Context) {
	var in ProductChange
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := h.svc.UpdateProduct(c.Request.Context(), c.Param("id"), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (h httpHandler) changeStock(c *gin.Context) {
	var in StockChange
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := h.svc.ChangeStock(c.Request.Context(), c.Param("id"), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}
