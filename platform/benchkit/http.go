package benchkit

import (
	"net"
	"net/http"
	"time"
)

// NewHTTPClient is an HTTP client for up to conns concurrent connections
// to one loopback server: keep-alive, no proxy, no compression.
func NewHTTPClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
	}
}
