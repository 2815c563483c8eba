package httpx

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// readingBodies signals on reading once the handler chain has begun to
// read a request's body: the chain is then past everything it does before
// reading.
func readingBodies(reading chan<- string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.ContentLength != 0 {
			c.Request.Body = &firstRead{ReadCloser: c.Request.Body, signal: func() { reading <- c.Request.URL.Path }}
		}
		c.Next()
	}
}

type firstRead struct {
	io.ReadCloser
	once   sync.Once
	signal func()
}

func (f *firstRead) Read(p []byte) (int, error) {
	f.once.Do(f.signal)
	return f.ReadCloser.Read(p)
}

// bodyServer serves POST /echo, which decodes a JSON object and answers
// 201, and GET /work, behind an in-flight bound of limit with bodies of
// at most bodyBytes, wired as the shop wires them.
func bodyServer(t *testing.T, limit int, bodyBytes int64) (srv *httptest.Server, bound *InFlight, reading chan string) {
	t.Helper()
	reading = make(chan string, 64)
	log := slog.New(slog.DiscardHandler)
	bound = NewInFlight(limit, bodyBytes)
	r := gin.New()
	r.Use(readingBodies(reading), RequestIDs(), Recover(log), bound.Middleware(), Errors(log))
	r.POST("/echo", func(c *gin.Context) {
		var v map[string]any
		if err := DecodeJSON(c, &v); err != nil {
			Fail(c, err)
			return
		}
		c.JSON(http.StatusCreated, v)
	})
	r.POST("/small", LimitBody(100), func(c *gin.Context) {
		var v map[string]any
		if err := DecodeJSON(c, &v); err != nil {
			Fail(c, err)
			return
		}
		c.JSON(http.StatusCreated, v)
	})
	r.GET("/work", func(c *gin.Context) { c.String(http.StatusOK, "done") })
	srv = httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, bound, reading
}

// slowBody sends a request's head and the first part of a body of
// declared length n, and keeps the connection to send the rest.
func slowBody(t *testing.T, url, path string, n int, first string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, n, first); err != nil {
		t.Fatal(err)
	}
	return conn
}

// Clients that send their bodies slowly (here: not at all after the first
// byte) hold no place in flight while the body arrives: a place is taken
// once the body is there. Others are served meanwhile, and a slow body
// that arrives in the end is served too.
func TestInFlight_SlowBodiesHoldNoPlaceWhileTheyArrive(t *testing.T) {
	t.Parallel()
	const limit = 2
	srv, _, reading := bodyServer(t, limit, 1<<20)
	body := `{"a":"` + strings.Repeat("x", 990) + `"}`
	var slow []net.Conn
	for range limit {
		slow = append(slow, slowBody(t, srv.URL, "/echo", len(body), body[:1]))
	}
	for range limit {
		<-reading // the server is reading each body
	}

	if resp, text := get(t, srv.URL+"/work"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /work while %d clients send their bodies slowly, with a bound of %d: %d Retry-After %q %s",
			limit, limit, resp.StatusCode, resp.Header.Get("Retry-After"), text)
	}
	fmt.Fprint(slow[0], body[1:])
	resp, err := http.ReadResponse(bufio.NewReader(slow[0]), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("a slow body that arrived in the end: %d, want 201", resp.StatusCode)
	}
}

// The bytes bodies hold while they arrive, and while their requests are
// in flight, are bounded (the bound on requests times the body limit):
// clients that send most of their bodies fast and then stop make requests
// with bodies wait for room (503 at once), not the server's memory grow.
// Requests without a body are still served, and a client that leaves
// gives its bytes back.
func TestInFlight_BodiesHoldAtMostTheirBoundOfBytes(t *testing.T) {
	t.Parallel()
	const limit, bodyBytes, sent = 2, 4096, 3000
	srv, bound, reading := bodyServer(t, limit, bodyBytes)
	var stalled []net.Conn
	for range limit {
		stalled = append(stalled, slowBody(t, srv.URL, "/echo", bodyBytes, `{"a":"`+strings.Repeat("x", sent-6)))
		<-reading
	}
	// Each has sent more than half its body: its buffer has grown to the
	// whole body, and together they hold the bound.
	waitFor(t, "the stalled bodies holding every byte bodies may", func() bool { return bound.held.Load() == bound.bodies })

	resp, text := post(t, srv.URL+"/echo", `{"b":1}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		resp.Header.Get("Content-Type") != ProblemContentType {
		t.Errorf("a small body while %d stalled bodies hold %d of %d bytes: %d Retry-After %q %s, want a 503 problem with Retry-After",
			limit, bound.held.Load(), bound.bodies, resp.StatusCode, resp.Header.Get("Retry-After"), text)
	}
	if resp, text := get(t, srv.URL+"/work"); resp.StatusCode != http.StatusOK {
		t.Errorf("a GET meanwhile: %d %s", resp.StatusCode, text)
	}

	stalled[0].Close()
	waitFor(t, "the bytes of the body whose client left given back", func() bool { return bound.held.Load() < bound.bodies })
	if resp, text := post(t, srv.URL+"/echo", `{"b":1}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("a small body once a stalled client left: %d %s", resp.StatusCode, text)
	}
}

// A body over the limit is refused with a 413 problem: at once when its
// length says so, and otherwise after the server read one byte more than
// the limit, however much more the client sends.
func TestInFlight_ABodyOverTheLimitIs413AndReadNoFurther(t *testing.T) {
	t.Parallel()
	const bodyBytes = 4096
	srv, _, _ := bodyServer(t, 4, bodyBytes)
	read := make(chan int64, 8)
	counted := gin.New()
	counted.Use(func(c *gin.Context) {
		body := &countingBody{ReadCloser: c.Request.Body}
		c.Request.Body = body
		defer func() { read <- body.n }()
		c.Next()
	})
	counted.Any("/*path", gin.WrapH(srv.Config.Handler))
	cs := httptest.NewServer(counted)
	t.Cleanup(cs.Close)

	resp, text := post(t, cs.URL+"/echo", strings.Repeat(" ", bodyBytes+1))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get("Content-Type") != ProblemContentType ||
		!strings.Contains(text, "larger than 4096 bytes") {
		t.Errorf("a body of declared length over the limit: %d %s, want a 413 problem", resp.StatusCode, text)
	}
	if n := <-read; n != 0 {
		t.Errorf("a body of declared length over the limit: %d bytes read, want none", n)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(cs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprint(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	go func() { // sends chunks until the server closes the connection
		chunk := fmt.Sprintf("400\r\n%s\r\n", bytes.Repeat([]byte(" "), 0x400))
		for {
			if _, err := fmt.Fprint(conn, chunk); err != nil {
				return
			}
		}
	}()
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "larger than 4096 bytes") {
		t.Errorf("an endless chunked body: %d %s, want a 413 problem", resp.StatusCode, raw)
	}
	if n := <-read; n > bodyBytes+1 {
		t.Errorf("an endless chunked body: the handlers read %d bytes, want at most the limit and one", n)
	}
}

// A route may take smaller bodies than the server (LimitBody): a received
// body over the route's limit is refused at once, whether its length was
// declared or not.
func TestLimitBody_ARouteLimitBelowTheServersHoldsForReceivedBodies(t *testing.T) {
	t.Parallel()
	srv, _, _ := bodyServer(t, 4, 4096)
	big := `{"a":"` + strings.Repeat("x", 200) + `"}`
	if resp, text := post(t, srv.URL+"/small", big); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text, "larger than 100 bytes") {
		t.Errorf("a 208-byte body on a route of 100: %d %s, want 413", resp.StatusCode, text)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/small", io.MultiReader(strings.NewReader(big))) // no length: sent chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), "larger than 100 bytes") {
		t.Errorf("a 208-byte body sent chunked on a route of 100: %d %s, want 413", resp.StatusCode, raw)
	}
	if resp, text := post(t, srv.URL+"/small", `{"a":1}`); resp.StatusCode != http.StatusCreated || text != `{"a":1}` {
		t.Errorf("a small body on that route: %d %s", resp.StatusCode, text)
	}
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
