// Package testkit holds what modshop's tests share: above all, the
// PostgreSQL server they run against.
//
// Tests use TEST_DATABASE_URL when it is set (CI sets it). Otherwise they
// share one embedded server per user, started by the first test binary that
// needs it and left running afterwards, so that the next package and the next
// `go test` attach to it in milliseconds instead of paying for initdb.
// Its files are in $TMPDIR/modshop-testpg-$UID; stop it with pg_ctl stop -D
// on the data directory there (as the user it runs as: postgres when tests
// run as root).
//
// When tests run as root, pgembed re-executes the test binary to start the
// server, so every TestMain of a package using ServerURL must call
// pgembed.RunChildIfRequested first.
package testkit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/modshop/modshop/platform/pgembed"
)

// testServerPort is the shared server's port: not 5432, where a system
// PostgreSQL may run, and not 54320, modshop's own embedded default.
const testServerPort = 54321

var shared struct {
	once sync.Once
	url  string
	err  error
}

// ServerURL returns a superuser URL to the "postgres" maintenance database
// of the server tests run against, so that callers can CREATE DATABASE one
// per test. It is TEST_DATABASE_URL when set; otherwise the shared embedded
// server is started, or reused if already running, on first call.
func ServerURL() (string, error) {
	if url := os.Getenv("TEST_DATABASE_URL"); url != "" {
		return url, nil
	}
	shared.once.Do(func() {
		shared.url, shared.err = startSharedServer()
	})
	return shared.url, shared.err
}

func startSharedServer() (string, error) {
	// Generous: a cold start includes initdb, and several test binaries may
	// queue on the server's lock.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgembed.Start(ctx, pgembed.Config{
		// Per user, so that two users on one machine do not fight over it.
		Dir:      filepath.Join(os.TempDir(), fmt.Sprintf("modshop-testpg-%d", os.Getuid())),
		Port:     testServerPort,
		Database: "postgres",
	})
	if err != nil {
		return "", fmt.Errorf("test database (set TEST_DATABASE_URL to use an existing server): %w", err)
	}
	// Not stopped: the next test binary reuses it.
	return srv.URL(), nil
}
