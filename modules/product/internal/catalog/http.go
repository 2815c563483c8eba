package catalog

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// Routes mounts the catalog endpoints on the /api/v1 group.
func (s *Service) Routes(api *gin.RouterGroup) {
	admin := auth.RequireRole(auth.RoleAdmin)
	api.GET("/categories", s.handleCategories)
	api.POST("/categories", admin, s.handleCreateCategory)
	api.GET("/products", s.handleList)
	api.GET("/products/:id", s.handleGet)
	api.POST("/products", admin, s.handleCreate)
	api.PATCH("/products/:id", admin, s.handleUpdate)
	api.POST("/products/:id/stock", admin, s.handleStock)
}

func isStaff(c *gin.Context) bool {
	id, ok := auth.FromContext(c.Request.Context())
	return ok && id.HasRole(auth.RoleAdmin)
}

func (s *Service) handleCategories(c *gin.Context) {
	cats, err := s.Categories(c.Request.Context())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": cats})
}

func (s *Service) handleCreateCategory(c *gin.Context) {
	var in NewCategory
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	cat, err := s.CreateCategory(c.Request.Context(), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, cat)
}

func (s *Service) handleList(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 20, MaxPageSize)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	page, err := s.List(c.Request.Context(), c.Query("q"), c.Query("category"), c.Query("cursor"), limit, isStaff(c), c.Query("include_inactive") == "true")
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, page)
}

func (s *Service) handleGet(c *gin.Context) {
	p, err := s.Product(c.Request.Context(), c.Param("id"), isStaff(c))
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Service) handleCreate(c *gin.Context) {
	var in NewProduct
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := s.CreateProduct(c.Request.Context(), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/products/"+p.ID)
	c.JSON(http.StatusCreated, p)
}

func (s *Service) handleUpdate(c *gin.Context) {
	var in ProductChange
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := s.UpdateProduct(c.Request.Context(), c.Param("id"), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (s *Service) handleStock(c *gin.Context) {
	var in StockChange
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := s.ChangeStock(c.Request.Context(), c.Param("id"), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}
