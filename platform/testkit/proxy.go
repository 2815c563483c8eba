package testkit

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// TCPProxy forwards TCP connections to a target and can cut them: the test
// stand-in for a database (or a network) that goes away and comes back.
// Cut closes every connection it carries, as a server that died would
// (its side of each is closed, the database's side too), and from then on
// resets new connections as soon as they arrive, so clients see their
// connections lost and then refused; Restore lets new connections through
// again. The listening port stays the proxy's throughout, so nothing else
// can take it meanwhile.
type TCPProxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewTCPProxy listens on a free loopback port and forwards to target
// (host:port). It closes when the test ends.
func NewTCPProxy(tb testing.TB, target string) *TCPProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	p := &TCPProxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// NewProxiedDatabase creates a database as NewDatabase does and returns a
// URL to it that goes through a new TCPProxy, with the proxy.
func NewProxiedDatabase(tb testing.TB) (string, *TCPProxy) {
	tb.Helper()
	direct, err := url.Parse(NewDatabase(tb))
	if err != nil {
		tb.Fatalf("proxied database: %v", err)
	}
	p := NewTCPProxy(tb, direct.Host)
	direct.Host = p.Addr()
	return direct.String(), p
}

// Addr is where clients connect (host:port).
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection the proxy carries and refuses new ones
// until Restore.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// Restore lets new connections through again. Connections cut stay closed.
func (p *TCPProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops listening and closes every connection.
func (p *TCPProxy) Close() {
	_ = p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *TCPProxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			reset(client)
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// forward carries one connection until either side closes or Cut.
func (p *TCPProxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	if !p.track(client, server) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done // one side ended: end both
	p.untrack(client, server)
	<-done
}

// track registers a carried connection's two sides; a Cut that came while
// the target was being dialled closes them at once.
func (p *TCPProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		for _, c := range conns {
			reset(c)
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *TCPProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		delete(p.conns, c)
		_ = c.Close()
	}
}

// reset closes c with a TCP reset rather than an orderly close, as a
// vanished peer or a refused connection looks to the other side.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
