package httpx

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

func TestPageLimit_DefaultWhenAbsentRefusedWhenNotAWholeNumberInRange(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int // 0: refused with a 422 naming limit
	}{
		{"", 20},
		{"?limit=5", 5},
		{"?limit=1", 1},
		{"?limit=100", 100},
		{"?limit=", 0},
		{"?limit=0", 0},
		{"?limit=101", 0},
		{"?limit=-1", 0},
		{"?limit=1.5", 0},
		{"?limit=ten", 0},
		{"?limit=99999999999999999999", 0},
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodGet, "/things"+tc.query, nil)
		got, err := PageLimit(c, 20, 100)
		if tc.want != 0 {
			if err != nil || got != tc.want {
				t.Errorf("%q: PageLimit = %d, %v; want %d", tc.query, got, err, tc.want)
			}
			continue
		}
		var p *Problem
		if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
			t.Errorf("%q: PageLimit = %d, %v; want a 422 naming limit", tc.query, got, err)
		}
	}
}
