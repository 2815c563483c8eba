package apptest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync/atomic"
	"testing"
	"time"
)

// Front stands for the load balancer in front of full replicas: a reverse
// proxy in the test process that sends each request to the next replica in
// turn (round robin), so that consecutive requests of one client, even a
// log-in and the request that uses its token, land on different
// processes.
//
// A proxy rather than a client that alternates base URLs: every request of
// the harness and the suites (Admin, Customer, sagasuite) goes through it
// unchanged, and when a replica dies it does what a load balancer does. A
// request whose connection is refused (nothing was sent) goes to the next
// replica; one cut off after it was sent is answered 502, and only the
// client may send it again (with its Idempotency-Key), since the replica
// may have applied it.
type Front struct {
	URL string

	names, addrs []string
	next         atomic.Uint64
	served       []atomic.Int64
	transport    *http.Transport
	srv          *http.Server
}

// startFront serves a round-robin front to the processes names (at
// addrs[name]) until the test ends.
func startFront(tb testing.TB, names []string, addrs map[string]string) *Front {
	tb.Helper()
	f := &Front{names: names, served: make([]atomic.Int64, len(names)), transport: &http.Transport{}}
	for _, n := range names {
		f.addrs = append(f.addrs, addrs[n])
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{
		// The Director form keeps the client's X-Forwarded-For and
		// appends this hop (127.0.0.1, a trusted proxy of the replicas):
		// tests may play clients at other addresses.
		Director: func(r *http.Request) {
			r.URL.Scheme = "http"
			r.URL.Host = "replica" // RoundTrip picks which
		},
		Transport: f,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, `{"type":"about:blank","title":"Bad Gateway","status":502,"detail":%q}`, err.Error())
		},
	}
	f.srv = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	f.URL = "http://" + ln.Addr().String()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
		f.transport.CloseIdleConnections()
	})
	return f
}

// RoundTrip sends req to the next replica, or to the one after it when
// the connection is refused (a dead replica).
func (f *Front) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	first := int(f.next.Add(1) % uint64(len(f.addrs))) // #nosec G115 -- a handful of replicas
	var err error
	for k := range f.addrs {
		i := (first + k) % len(f.addrs)
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = f.addrs[i], f.addrs[i]
		if body != nil {
			out.Body = io.NopCloser(bytes.NewReader(body))
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		var resp *http.Response
		resp, err = f.transport.RoundTrip(out)
		if err == nil {
			f.served[i].Add(1)
			resp.Header.Set("X-Modshop-Replica", f.names[i])
			return resp, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // sent, perhaps applied: the client decides
		}
	}
	return nil, err
}

// Served is how many requests the replica named name answered.
func (f *Front) Served(name string) int64 {
	for i, n := range f.names {
		if n == name {
			return f.served[i].Load()
		}
	}
	return 0
}
