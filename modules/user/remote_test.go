package user_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/modshop/modshop/modules/user"
)

// userModuleStub answers /api/v1/users/me as the user module does, and
// counts the connections callers open to it.
func userModuleStub(t *testing.T) (url string, opened *atomic.Int32) {
	t.Helper()
	opened = new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"id":"0b7e3c5e-2c07-4c5b-9d8e-2f3f1a3c1b10","username":"u","roles":[]}` + "\n"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, opened
}

func TestRemoteAuthenticator_KeepsItsConnectionsToTheUserModuleBounded(t *testing.T) {
	t.Parallel()
	url, opened := userModuleStub(t)
	a := user.RemoteAuthenticator(url, nil)
	const rounds, concurrent = 5, 100
	for range rounds {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if _, err := a.Authenticate(context.Background(), "a-token"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	// At most 64 at once, kept open between requests: not a connection
	// per request, nor one per request in flight.
	if n := opened.Load(); n > 64 {
		t.Fatalf("%d connections opened for %d rounds of %d concurrent checks, want at most 64", n, rounds, concurrent)
	}
}
