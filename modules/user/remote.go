package user

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
)

// RemoteAuthenticator checks session tokens by asking a process that runs
// the user module (GET /api/v1/users/me with the token), for processes that
// run other modules only. Nothing is cached: a token stops working
// everywhere the moment its owner logs out. When the user module does not
// answer, requests that carry a token get a 503 problem (anonymous
// requests are not affected).
func RemoteAuthenticator(baseURL string, log *slog.Logger) auth.Authenticator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &remoteAuthenticator{
		me: strings.TrimRight(baseURL, "/") + "/api/v1/users/me",
		// Each check is a client span ("user authenticate GET") whose
		// traceparent makes the user module's server span its child.
		client: &http.Client{Timeout: 5 * time.Second, Transport: telemetry.Transport(&http.Transport{
			Proxy:       http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			// Every request that carries a token asks the user module, so
			// keep as many connections open as may be in use (the default
			// keeps 2, and opens and drops one per request beyond that),
			// and no more than remoteAuthConns at once: beyond that a check
			// waits for a connection, within the client's timeout.
			MaxConnsPerHost:     remoteAuthConns,
			MaxIdleConnsPerHost: remoteAuthConns,
			IdleConnTimeout:     90 * time.Second,
		}, "user authenticate")},
		log: log.With("component", "remote-auth"),
	}
}

// remoteAuthConns bounds the connections a process opens to the user
// module to check sessions.
const remoteAuthConns = 64

type remoteAuthenticator struct {
	me     string
	client *http.Client
	log    *slog.Logger
}

// errUserModuleUnavailable is what a caller with a token gets while the
// user module cannot be asked.
var errUserModuleUnavailable = httpx.NewProblem(http.StatusServiceUnavailable, "auth-unavailable",
	"sessions cannot be checked right now (the user module does not answer); try again shortly")

func (a *remoteAuthenticator) Authenticate(ctx context.Context, token string) (auth.Identity, error) {
	if token == "" {
		return auth.Identity{}, auth.ErrInvalidToken
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.me, nil)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("remote auth: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return auth.Identity{}, ctx.Err()
		}
		a.log.WarnContext(ctx, "the user module does not answer", "url", a.me, "err", err)
		return auth.Identity{}, errUserModuleUnavailable
	}
	defer func() {
		// Read what is left, so that the connection can serve the next check.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return auth.Identity{}, auth.ErrInvalidToken
	default:
		a.log.WarnContext(ctx, "the user module refused to check a session", "url", a.me, "status", resp.StatusCode)
		return auth.Identity{}, errUserModuleUnavailable
	}
	var u struct {
		ID       string   `json:"id"`
		Username string   `json:"username"`
		Roles    []string `json:"roles"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&u); err != nil || u.ID == "" {
		a.log.WarnContext(ctx, "the user module's answer cannot be read", "url", a.me, "err", err)
		return auth.Identity{}, errUserModuleUnavailable
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return auth.Identity{UserID: u.ID, Username: u.Username, Roles: u.Roles}, nil
}
