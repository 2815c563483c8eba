package app_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
)

// slowBodies opens a connection to base for each body, sends a POST to
// path with the body's length and its first byte only, and waits until
// the server works on every one of them: receives their bodies, or (as it
// did before they held no place) holds a place in flight for each.
func slowBodies(t *testing.T, base, path string, bodies ...string) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for _, body := range bodies {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			path, len(body), body[:1]); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	n := strconv.Itoa(len(bodies))
	waitUntil(t, "the server working on every slow body", func() bool {
		return gatewayGauge(t, base, "modshop_http_requests_receiving_body") == n ||
			gatewayGauge(t, base, "modshop_http_requests_in_flight") == n
	})
	return conns
}

// finishBody sends the rest of body on conn and reads the answer.
func finishBody(t *testing.T, conn net.Conn, body string) *http.Response {
	t.Helper()
	if _, err := fmt.Fprint(conn, body[1:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// padded is a JSON object of n bytes: obj followed by spaces.
func padded(obj string, n int) string { return obj + strings.Repeat(" ", n-len(obj)) }

// Clients that send their bodies slowly hold no place in flight while
// their bodies arrive: as many of them as the bound leave the shop
// answering everyone else.
func TestMaxRequestsInFlight_SlowBodiesHoldNoPlace(t *testing.T) {
	t.Parallel()
	const bound = 2
	shop := apptest.Start(t, func(c *app.Config) { c.MaxRequestsInFlight = bound })
	body := padded(`{"login":"nobody","password":"not-this-one"}`, 1000)
	conns := slowBodies(t, shop.URL, "/api/v1/sessions", body, body)

	if status, text := plainGet(t, shop.URL+"/api/v1/categories"); status != http.StatusOK {
		t.Errorf("GET /categories while %d clients send log-in bodies slowly, with a bound of %d: %d %s", bound, bound, status, text)
	}
	if resp := finishBody(t, conns[0], body); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a slow log-in body that arrived in the end: %d, want 401 (no such user)", resp.StatusCode)
	}
}

// The gateway receives a body whole before it takes a place and before it
// sends the request on: slow clients hold neither the gateway's places
// nor connections to (and places in) the processes behind it.
func TestGateway_SlowBodiesHoldNoPlaceAndReachTheUpstreamWhole(t *testing.T) {
	t.Parallel()
	up := newCountingUpstream(t)
	gw := startGateway(t, "--route", "/api/v1="+up.URL, "--max-requests-in-flight", "2")
	body := padded(`{}`, 1000)
	conns := slowBodies(t, gw, "/api/v1/orders", body, body)

	if resp, raw := do(t, "GET", gw+"/api/v1/other", "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET while 2 clients send bodies slowly, with a bound of 2: %d %s", resp.StatusCode, raw)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("the upstream has %d connections while 2 bodies arrive at the gateway and one GET passed, want 1", n)
	}
	if resp := finishBody(t, conns[0], body); resp.StatusCode != http.StatusOK {
		t.Errorf("a slow body that arrived in the end: %d, want 200", resp.StatusCode)
	}
	if n := up.requests.Load(); n != 2 {
		t.Errorf("the upstream served %d requests, want 2 (the GET and the finished body)", n)
	}
}
