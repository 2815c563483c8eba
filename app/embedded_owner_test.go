package app_test

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The tests in this file run several modshop processes on one data
// directory, as a person does who runs `modshop users create` or a second
// `make run` while the shop runs. The embedded PostgreSQL must stay up for
// as long as any of them uses it, and go down with the last one.

// TestEmbedded_CLICommandsLeaveTheShopsDatabaseRunning runs the README's
// commands while the shop runs: each uses the shop's database and leaves
// it running. Alone, a command stops the server it started.
func TestEmbedded_CLICommandsLeaveTheShopsDatabaseRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)

		if out, err := c.run(t, "", "migrate"); err != nil {
			t.Fatalf("modshop migrate: %v\n%s", err, out)
		}
		if postgresListens(c.pgPort) {
			t.Fatal("modshop migrate, run alone, left the PostgreSQL it started running")
		}

		p := c.serve(t, "")
		out, err := c.run(t, "alice's password\n", "users", "create", "--admin", "--username", "alice", "--email", "alice@example.com")
		if err != nil {
			t.Fatalf("modshop users create while the shop runs: %v\n%s", err, out)
		}
		p.answers(t)
		p.logIn(t, "alice", "alice's password")

		out, err = c.run(t, "", "seed", "--demo")
		if err != nil {
			t.Fatalf("modshop seed --demo while the shop runs: %v\n%s", err, out)
		}
		p.answers(t)
		if n := countProducts(t, p); n == 0 {
			t.Fatalf("the shop lists no products after seed --demo\n%s", p.log)
		}
		p.stop(t)
	})
}

// TestEmbedded_RootCommandLeavesAnOrdinaryUsersDatabaseAlone is `sudo
// modshop users create` in the clone of a user whose shop runs: root would
// run PostgreSQL as user postgres and so hand the user's cluster to that
// user, which breaks the running server and locks the user out of their
// data. It is refused instead, and the user's shop runs on.
func TestEmbedded_RootCommandLeavesAnOrdinaryUsersDatabaseAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the shop as another user")
	}
	bin, _ := buildBinary(t)
	c := newCheckout(t, bin, ordinaryUser(t))
	p := c.serve(t, "")

	asRoot := *c
	asRoot.cred = nil
	out, err := asRoot.run(t, "dave's password\n", "users", "create", "--username", "dave", "--email", "dave@example.com")
	t.Logf("users create as root: %v\n%s", err, out)
	if err == nil {
		t.Fatal("users create as root used the database of a shop run by another user")
	}
	if !strings.Contains(out, "run modshop as that user") {
		t.Errorf("the refusal does not say to run modshop as the user who owns the database")
	}
	p.answers(t)
	p.stop(t)
}

// TestEmbedded_SecondServeOnTheSamePortIsRefusedBeforeTheDatabase is a
// second `make run` in another terminal: it cannot have the HTTP port and
// must say so without touching the database the first one uses.
func TestEmbedded_SecondServeOnTheSamePortIsRefusedBeforeTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)
		addr := freeAddr(t)
		first := c.serve(t, addr)

		second := c.startServe(t, addr)
		<-second.exited
		t.Logf("second serve: %v\n%s", second.err, second.log)
		if second.err == nil {
			t.Fatal("a second serve on a port in use exited 0")
		}
		for _, want := range []string{addr, "address already in use", "MODSHOP_HTTP_ADDR"} {
			if !strings.Contains(second.log.String(), want) {
				t.Errorf("the refusal lacks %q", want)
			}
		}
		if strings.Contains(second.log.String(), "PostgreSQL") {
			t.Errorf("the second serve got to the database before it found the port taken")
		}
		first.answers(t)
		first.stop(t)
	})
}

// TestEmbedded_ServesOnOneDataDirectoryShareTheDatabase runs several
// `serve` processes on one data directory, each on its own HTTP port: they
// all work, any of them may leave first, and the database goes down with
// the last one, whichever started it.
func TestEmbedded_ServesOnOneDataDirectoryShareTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)
		first := c.serve(t, "")
		second := c.serve(t, "")
		second.answers(t)

		second.signal(t, syscall.SIGINT)
		first.answers(t)

		// The process that started the database leaves before the one
		// that found it running.
		third := c.serve(t, "")
		first.signal(t, syscall.SIGTERM)
		if !postgresListens(c.pgPort) {
			t.Fatalf("the database went down with the process that started it while another still used it\n%s", first.log)
		}
		third.answers(t)
		third.stop(t)
	})
}

// TestEmbedded_BadHTTPAddressFailsBeforeTheDatabase is a typo in the
// address: it is refused before the database is started, migrated or
// even given a directory.
func TestEmbedded_BadHTTPAddressFailsBeforeTheDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)
		out, err := c.run(t, "", "serve", "--http-addr", "9000")
		t.Logf("serve --http-addr 9000: %v\n%s", err, out)
		if err == nil {
			t.Fatal("serve --http-addr 9000 exited 0")
		}
		for _, want := range []string{`"9000"`, ":9000", "--http-addr"} {
			if !strings.Contains(out, want) {
				t.Errorf("the refusal lacks %q", want)
			}
		}
		if _, err := os.Stat(filepath.Join(c.dir, ".data")); err == nil {
			t.Errorf("serve with a bad address created the data directory before it checked the address")
		}
		if postgresListens(c.pgPort) {
			t.Errorf("serve with a bad address left a PostgreSQL running")
		}
	})
}

// TestEmbedded_StartsCleanlyAfterKill9 kills the shop with SIGKILL, which
// leaves its PostgreSQL running and its lock files behind: the next start
// takes that server over, and stops it when it leaves.
func TestEmbedded_StartsCleanlyAfterKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)
		addr := freeAddr(t)
		first := c.serve(t, addr)
		out, err := c.run(t, "bob's password\n", "users", "create", "--username", "bob", "--email", "bob@example.com")
		if err != nil {
			t.Fatalf("modshop users create: %v\n%s", err, out)
		}
		first.kill(t)

		next := c.serve(t, addr)
		next.logIn(t, "bob", "bob's password")
		next.answers(t)
		next.stop(t)
	})
}

// TestEmbedded_ReadyLineShowsTheURLToOpen: a shop listening on every
// interface (":8080", as `make run` does) says where to point a browser.
func TestEmbedded_ReadyLineShowsTheURLToOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)
	c := newCheckout(t, bin, nil)
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := c.serve(t, ":"+port)
	var ready string
	for line := range strings.Lines(p.log.String()) {
		if strings.Contains(line, "modshop ready") {
			ready = line
		}
	}
	if want := "http://localhost:" + port + "/"; !strings.Contains(ready, want) {
		t.Errorf("ready line %q lacks %s\n%s", ready, want, p.log)
	}
	p.stop(t)
}

func countProducts(t *testing.T, p *process) int {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/products?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list products: %s\n%s", resp.Status, p.log)
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return len(page.Items)
}
