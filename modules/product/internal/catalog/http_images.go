package catalog

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/httpx"
)

// imageUploadTypes are the Content-Types an upload may declare. The bytes
// decide what the image is (sniffImage); the declaration only turns away
// what says it is something else, SVG included.
var imageUploadTypes = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/webp": true, "application/octet-stream": true,
}

// imageCacheControl: an image's bytes never change under its id.
const imageCacheControl = "public, max-age=31536000, immutable"

func (h httpHandler) addImage(c *gin.Context) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil || !imageUploadTypes[mt] {
		httpx.Fail(c, httpx.NewProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			"send the image's bytes as the body, as image/png, image/jpeg or image/webp"))
		return
	}
	data, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpx.Fail(c, httpx.BodyTooLarge(tooBig.Limit))
			return
		}
		httpx.Fail(c, httpx.BadRequest("the body could not be read"))
		return
	}
	im, err := h.svc.AddImage(c.Request.Context(), c.Param("id"), data)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Header("Location", im.URL)
	c.JSON(http.StatusCreated, im)
}

func (h httpHandler) image(c *gin.Context) {
	imageID := c.Param("image_id")
	ct, data, err := h.svc.ImageBytes(c.Request.Context(), c.Param("id"), imageID)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	etag := `"` + imageID + `"`
	hdr := c.Writer.Header()
	hdr.Set("ETag", etag)
	hdr.Set("Cache-Control", imageCacheControl)
	hdr.Set("X-Content-Type-Options", "nosniff")
	if inm := c.GetHeader("If-None-Match"); inm == "*" || strings.Contains(inm, etag) {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, ct, data)
}

func (h httpHandler) changeImage(c *gin.Context) {
	var in ImageChange
	if err := httpx.DecodeJSON(c, &in); err != nil {
		httpx.Fail(c, err)
		return
	}
	p, err := h.svc.ChangeImage(c.Request.Context(), c.Param("id"), c.Param("image_id"), in)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}

func (h httpHandler) deleteImage(c *gin.Context) {
	if err := h.svc.DeleteImage(c.Request.Context(), c.Param("id"), c.Param("image_id")); err != nil {
		httpx.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
