package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/httpx"
)

// gatewayBus is the gateway's one view of the bus (ADR 0028): the staff's
// bus overview and dead-letter list merged from every module process, each
// row labelled with the process that reported it, and each dead letter's
// inspection, replay and discard sent to the process that listed it
// (?process=). Each process is asked for its own part alone
// (scope=local), with the staff's credentials: authorization stays in the
// processes.
type gatewayBus struct {
	g      *gateway
	client *http.Client

	mu        sync.Mutex
	byProcess map[string]*gatewayUpstream // learnt from the processes' answers
}

// busAskTimeout bounds one process's answer to the fan-out.
const busAskTimeout = 10 * time.Second

// busRoutes mounts the merged bus view on the gateway.
func (g *gateway) busRoutes(e *gin.Engine) {
	v := &gatewayBus{g: g, client: &http.Client{Timeout: busAskTimeout}, byProcess: map[string]*gatewayUpstream{}}
	e.GET("/api/v1/admin/bus", v.overview)
	e.GET("/api/v1/admin/dead-letters", v.deadLetters)
	e.GET("/api/v1/admin/dead-letters/:id", v.oneLetter)
	e.DELETE("/api/v1/admin/dead-letters/:id", v.oneLetter)
	e.POST("/api/v1/admin/dead-letters/:id/replay", v.oneLetter)
}

// upstreams are the distinct module processes behind the gateway, each
// with the proxy of its first route.
func (v *gatewayBus) upstreams() []*gatewayUpstream {
	seen := map[string]bool{}
	var out []*gatewayUpstream
	for _, r := range v.g.routes {
		if !seen[r.Upstream.String()] {
			seen[r.Upstream.String()] = true
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *gatewayUpstream) int { return strings.Compare(a.Upstream.String(), b.Upstream.String()) })
	return out
}

// busAnswer is one process's answer to the fan-out.
type busAnswer struct {
	up     *gatewayUpstream
	status int
	body   []byte
	err    error
}

// ask sends GET path?query (scope=local) to every process with the
// staff's credentials and request id.
func (v *gatewayBus) ask(c *gin.Context, path string, q url.Values) []busAnswer {
	q.Set("scope", "local")
	ups := v.upstreams()
	out := make([]busAnswer, len(ups))
	var wg sync.WaitGroup
	for i, up := range ups {
		out[i].up = up
		wg.Go(func() {
			out[i].status, out[i].body, out[i].err = v.get(c, up, path+"?"+q.Encode())
		})
	}
	wg.Wait()
	return out
}

func (v *gatewayBus) get(c *gin.Context, up *gatewayUpstream, pathQuery string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), busAskTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(up.Upstream.String(), "/")+pathQuery, nil)
	if err != nil {
		return 0, nil, err
	}
	for _, h := range []string{"Authorization", "Cookie", "Accept-Language"} {
		if vals := c.Request.Header.Values(h); len(vals) > 0 {
			req.Header[h] = vals
		}
	}
	req.Host = c.Request.Host
	req.Header.Set(httpx.RequestIDHeader, httpx.RequestID(c))
	req.Header.Set("X-Forwarded-For", c.ClientIP())
	resp, err := v.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

// settle answers for the whole fan-out when a process refused the
// request itself (not signed in, not staff, a bad parameter: every process
// decides alike), and lists the processes that did not answer. ok false:
// the answer was written.
func (v *gatewayBus) settle(c *gin.Context, answers []busAnswer) (unreachable []string, ok bool) {
	for _, a := range answers {
		if a.err == nil && a.status >= 400 && a.status < 500 {
			c.Data(a.status, "application/problem+json", a.body)
			return nil, false
		}
	}
	for _, a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			v.g.log.WarnContext(c.Request.Context(), "gateway: bus view: a process did not answer",
				"upstream", a.up.Upstream.String(), "status", a.status, "err", a.err)
			unreachable = append(unreachable, a.up.Upstream.String())
		}
	}
	if len(unreachable) == len(answers) && len(answers) > 0 {
		httpx.WriteProblem(c, httpx.NewProblem(http.StatusBadGateway, "upstream-unavailable",
			"no module process answered for the bus; try again shortly"))
		return nil, false
	}
	return unreachable, true
}

// learn remembers which upstream reported process.
func (v *gatewayBus) learn(process string, up *gatewayUpstream) {
	if process == "" {
		return
	}
	v.mu.Lock()
	v.byProcess[process] = up
	v.mu.Unlock()
}

// overview merges the processes' own overviews: a topic's counts are the
// largest reported (on RabbitMQ only the publisher's process counts its
// messages; on the shared database all see the same), its consumers those
// of every process, each labelled with its process.
func (v *gatewayBus) overview(c *gin.Context) {
	answers := v.ask(c, "/api/v1/admin/bus", c.Request.URL.Query())
	unreachable, ok := v.settle(c, answers)
	if !ok {
		return
	}
	byTopic := map[string]*bus.TopicStats{}
	for _, a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			continue
		}
		var got struct {
			Process string           `json:"process"`
			Topics  []bus.TopicStats `json:"topics"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil {
			unreachable = append(unreachable, a.up.Upstream.String())
			continue
		}
		v.learn(got.Process, a.up)
		for _, t := range got.Topics {
			have, seen := byTopic[t.Topic]
			if !seen {
				t.Consumers = slices.Clone(t.Consumers)
				byTopic[t.Topic] = &t
				continue
			}
			have.Published = max(have.Published, t.Published)
			have.Pruned = max(have.Pruned, t.Pruned)
			if t.LastPublished != nil && (have.LastPublished == nil || t.LastPublished.After(*have.LastPublished)) {
				have.LastPublished = t.LastPublished
			}
			have.Consumers = append(have.Consumers, t.Consumers...)
		}
	}
	topics := make([]bus.TopicStats, 0, len(byTopic))
	for _, t := range byTopic {
		slices.SortFunc(t.Consumers, func(x, y bus.ConsumerStats) int {
			return cmp.Or(strings.Compare(x.Handler, y.Handler), strings.Compare(x.Process, y.Process))
		})
		topics = append(topics, *t)
	}
	slices.SortFunc(topics, func(x, y bus.TopicStats) int { return strings.Compare(x.Topic, y.Topic) })
	body := gin.H{"topics": topics}
	if len(unreachable) > 0 {
		body["unreachable"] = unreachable
	}
	c.JSON(http.StatusOK, body)
}

// deadLetters merges the processes' own dead letters, newest first, up to
// the limit asked.
func (v *gatewayBus) deadLetters(c *gin.Context) {
	answers := v.ask(c, "/api/v1/admin/dead-letters", c.Request.URL.Query())
	unreachable, ok := v.settle(c, answers)
	if !ok {
		return
	}
	limit := 50
	if n, err := strconv.Atoi(c.Query("limit")); err == nil && n > 0 {
		limit = n // the processes checked it
	}
	items := []bus.DeadLetter{}
	for _, a := range answers {
		if a.err != nil || a.status != http.StatusOK {
			continue
		}
		var got struct {
			Items []bus.DeadLetter `json:"items"`
		}
		if err := json.Unmarshal(a.body, &got); err != nil {
			unreachable = append(unreachable, a.up.Upstream.String())
			continue
		}
		for _, d := range got.Items {
			v.learn(d.Process, a.up)
		}
		items = append(items, got.Items...)
	}
	slices.SortFunc(items, func(x, y bus.DeadLetter) int {
		return cmp.Or(y.FailedAt.Compare(x.FailedAt), strings.Compare(x.Process, y.Process), cmp.Compare(y.ID, x.ID))
	})
	if len(items) > limit {
		items = items[:limit]
	}
	body := gin.H{"items": items}
	if len(unreachable) > 0 {
		body["unreachable"] = unreachable
	}
	c.JSON(http.StatusOK, body)
}

// oneLetter sends the inspection, replay or discard of a dead letter to
// the process named by ?process= (the one that listed it), as any
// request is proxied; without it, by the routes as before.
func (v *gatewayBus) oneLetter(c *gin.Context) {
	process := c.Query("process")
	if process == "" {
		v.g.forward(c)
		return
	}
	up := v.owner(c, process)
	if up == nil {
		httpx.WriteProblem(c, httpx.NewProblem(http.StatusNotFound, "not-found",
			fmt.Sprintf("no process named %q behind the gateway", process)))
		return
	}
	c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), ginContextKey{}, c))
	up.proxy.ServeHTTP(c.Writer, c.Request)
	v.g.proxied.WithLabelValues(up.Prefix, strconv.Itoa(c.Writer.Status())).Inc()
}

// owner is the upstream of process: known from an earlier answer, or
// found by asking every process who it is.
func (v *gatewayBus) owner(c *gin.Context, process string) *gatewayUpstream {
	v.mu.Lock()
	up := v.byProcess[process]
	v.mu.Unlock()
	if up != nil {
		return up
	}
	for _, a := range v.ask(c, "/api/v1/admin/bus", url.Values{}) {
		if a.err != nil || a.status != http.StatusOK {
			continue
		}
		var got struct {
			Process string `json:"process"`
		}
		if json.Unmarshal(a.body, &got) == nil {
			v.learn(got.Process, a.up)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byProcess[process]
}
