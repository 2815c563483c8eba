package httpx

import (
	"os"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // once, before any parallel test reads it
	os.Exit(m.Run())
}
