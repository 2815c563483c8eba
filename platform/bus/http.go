package bus

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
)

// Routes mounts the staff endpoints for bus health and dead letters.
func (b *Bus) Routes(api *gin.RouterGroup) {
	admin := api.Group("/admin", auth.RequireRole(auth.RoleAdmin))
	admin.GET("/bus", b.handleOverview)
	admin.GET("/dead-letters", b.handleListDeadLetters)
	admin.GET("/dead-letters/:id", b.handleGetDeadLetter)
	admin.POST("/dead-letters/:id/replay", b.handleReplay)
	admin.DELETE("/dead-letters/:id", b.handleDiscard)
}

// localScope reads the scope parameter: "local" asks for this process's
// own part of the bus alone (LocalOverview, LocalDeadLetters), what the
// gateway merges from every process; "" or "database" for everything
// this process sees.
func localScope(c *gin.Context) (bool, bool) {
	switch c.Query("scope") {
	case "", "database":
		return false, true
	case "local":
		return true, true
	}
	httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "scope", Message: "must be local or database"}))
	return false, false
}

func (b *Bus) handleOverview(c *gin.Context) {
	local, ok := localScope(c)
	if !ok {
		return
	}
	overview := b.Overview
	if local {
		overview = b.LocalOverview
	}
	stats, err := overview(c.Request.Context())
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	body := gin.H{"topics": stats}
	if b.cfg.Process != "" {
		body["process"] = b.cfg.Process
	}
	c.JSON(http.StatusOK, body)
}

func (b *Bus) handleListDeadLetters(c *gin.Context) {
	limit, err := httpx.PageLimit(c, 50, 200)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	all := false
	switch c.Query("state") {
	case "", "open":
	case "all":
		all = true
	default:
		httpx.Fail(c, httpx.Invalid(httpx.FieldError{Field: "state", Message: "must be open or all"}))
		return
	}
	local, ok := localScope(c)
	if !ok {
		return
	}
	list := b.DeadLetters
	if local {
		list = b.LocalDeadLetters
	}
	items, err := list(c.Request.Context(), all, limit)
	if err != nil {
		httpx.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func deadLetterID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id < 1 {
		httpx.Fail(c, httpx.NotFound("no such dead letter"))
		return 0, false
	}
	return id, true
}

func (b *Bus) handleGetDeadLetter(c *gin.Context) {
	id, ok := deadLetterID(c)
	if !ok {
		return
	}
	d, err := b.DeadLetter(c.Request.Context(), id)
	if err != nil {
		httpx.Fail(c, deadLetterProblem(err))
		return
	}
	c.JSON(http.StatusOK, d)
}

func (b *Bus) handleReplay(c *gin.Context) {
	id, ok := deadLetterID(c)
	if !ok {
		return
	}
	d, err := b.Replay(c.Request.Context(), id)
	if err != nil {
		httpx.Fail(c, deadLetterProblem(err))
		return
	}
	c.JSON(http.StatusOK, d)
}

func (b *Bus) handleDiscard(c *gin.Context) {
	id, ok := deadLetterID(c)
	if !ok {
		return
	}
	if err := b.Discard(c.Request.Context(), id); err != nil {
		httpx.Fail(c, deadLetterProblem(err))
		return
	}
	c.Status(http.StatusNoContent)
}

func deadLetterProblem(err error) error {
	var replay *ReplayError
	switch {
	case errors.Is(err, ErrDeadLetterNotFound):
		return httpx.NotFound("no such dead letter")
	case errors.Is(err, ErrDiscarded):
		return httpx.Conflict("this dead letter was discarded; it cannot be replayed")
	case errors.Is(err, ErrHandlerNotHere):
		return httpx.Conflict("no process running the handler of this dead letter answered: replay it when that process runs")
	case errors.As(err, &replay):
		return httpx.Conflict("the handler failed again: " + replay.Err.Error())
	}
	return err
}
