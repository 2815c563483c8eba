package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/modshop/modshop/platform/pgembed"
)

var (
	createdMu sync.Mutex
	created   []string // databases to drop when the package's tests end
)

// NewDatabase creates an empty database on the test server and returns a
// superuser URL to it; it is dropped when the test ends. Every test that
// needs isolation gets its own, so tests run in parallel.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	u, name, err := createDatabase()
	if err != nil {
		tb.Fatalf("test database: %v", err)
	}
	tb.Cleanup(func() {
		if err := dropDatabase(name); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	return u
}

var (
	pkgOnce sync.Once
	pkgURL  string
	pkgErr  error
)

// PackageDatabase returns one database shared by all tests of the package,
// created on first use and dropped by Main.
func PackageDatabase(tb testing.TB) string {
	tb.Helper()
	pkgOnce.Do(func() {
		var name string
		pkgURL, name, pkgErr = createDatabase()
		if pkgErr == nil {
			createdMu.Lock()
			created = append(created, name)
			createdMu.Unlock()
		}
	})
	if pkgErr != nil {
		tb.Fatalf("test database: %v", pkgErr)
	}
	return pkgURL
}

// Main runs a package's tests: it lets the embedded PostgreSQL helper
// process do its job when this binary was re-executed as one, and drops
// the package database afterwards.
func Main(m *testing.M) {
	pgembed.RunChildIfRequested()
	code := m.Run()
	createdMu.Lock()
	for _, name := range created {
		if err := dropDatabase(name); err != nil {
			fmt.Fprintf(os.Stderr, "drop test database %s: %v\n", name, err)
		}
	}
	createdMu.Unlock()
	os.Exit(code)
}

func createDatabase() (dbURL, name string, err error) {
	server, err := ServerURL()
	if err != nil {
		return "", "", err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "modshop_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return "", "", err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(server)
	if err != nil {
		return "", "", err
	}
	u.Path = "/" + name
	return u.String(), name, nil
}

func dropDatabase(name string) error {
	server, err := ServerURL()
	if err != nil {
		return err
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}
