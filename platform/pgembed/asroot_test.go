package pgembed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// As root, pgembed creates, writes and chowns files for the account
// PostgreSQL runs as. Whoever can act as that account (any database
// superuser can, with COPY FROM PROGRAM) must not be able to choose where
// root does so. These tests plant what such a user could, and check that
// root touches nothing outside the cluster's own directory.

func requireRoot(t *testing.T) *account {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	a, err := unprivilegedAccount()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// hashedName is where root keeps the cluster of dir in the relocation root.
func hashedName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8])
}

// victimDir is a directory of root's with a file only root may read.
func victimDir(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root-only"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// owners lists dir and its entries with their owners.
func owners(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	info, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, ". uid %d\n", info.Sys().(*syscall.Stat_t).Uid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s uid %d\n", e.Name(), info.Sys().(*syscall.Stat_t).Uid)
	}
	return b.String()
}

func chownTo(t *testing.T, path string, a *account) {
	t.Helper()
	if err := os.Lchown(path, int(a.uid), int(a.gid)); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestStart_AsRootGoesNowhereTheDatabaseAccountCouldLeadIt(t *testing.T) {
	pg := requireRoot(t)
	// Each case returns the Config of a start and the directory of root's
	// that the account tries to lead that start into.
	cases := map[string]func(t *testing.T) (Config, string){
		// /var/lib/modshop made by, or handed to, the account: it plants
		// the cluster's place as a link.
		"a link in a relocation root the account owns": func(t *testing.T) (Config, string) {
			reloc := mkdir(t, filepath.Join(reachableTempDir(t), "modshop"), 0o755)
			chownTo(t, reloc, pg)
			dir := filepath.Join(lockedTempDir(t), "checkout", ".data", "postgres")
			victim := victimDir(t, reachableTempDir(t))
			symlink(t, victim, filepath.Join(reloc, hashedName(dir)))
			chownTo(t, filepath.Join(reloc, hashedName(dir)), pg)
			return Config{Dir: dir, relocateRoot: reloc}, victim
		},
		"a link in a relocation root anyone may write": func(t *testing.T) (Config, string) {
			reloc := mkdir(t, filepath.Join(reachableTempDir(t), "modshop"), 0o777)
			dir := filepath.Join(lockedTempDir(t), "checkout", ".data", "postgres")
			victim := victimDir(t, reachableTempDir(t))
			symlink(t, victim, filepath.Join(reloc, hashedName(dir)))
			chownTo(t, filepath.Join(reloc, hashedName(dir)), pg)
			return Config{Dir: dir, relocateRoot: reloc}, victim
		},
		// MODSHOP_DATA_DIR in a directory the account may write: the
		// account puts a link in place of <data dir>/postgres.
		"a link in place of the data directory": func(t *testing.T) (Config, string) {
			data := mkdir(t, filepath.Join(reachableTempDir(t), "data"), 0o755)
			chownTo(t, data, pg)
			victim := victimDir(t, reachableTempDir(t))
			symlink(t, victim, filepath.Join(data, "postgres"))
			chownTo(t, filepath.Join(data, "postgres"), pg)
			return Config{Dir: filepath.Join(data, "postgres"), relocateRoot: filepath.Join(reachableTempDir(t), "modshop")}, victim
		},
		// ... or in place of the directory above it.
		"a link in place of a parent of the data directory": func(t *testing.T) (Config, string) {
			shared := mkdir(t, filepath.Join(reachableTempDir(t), "shared"), 0o755)
			chownTo(t, shared, pg)
			elsewhere := reachableTempDir(t)
			victim := victimDir(t, elsewhere)
			symlink(t, elsewhere, filepath.Join(shared, "data"))
			chownTo(t, filepath.Join(shared, "data"), pg)
			return Config{Dir: filepath.Join(shared, "data", filepath.Base(victim)), relocateRoot: filepath.Join(reachableTempDir(t), "modshop")}, victim
		},
		// A link at the data directory that root did not make to its
		// relocated cluster: root follows no other.
		"a link in place of the data directory to elsewhere": func(t *testing.T) (Config, string) {
			parent := reachableTempDir(t)
			victim := victimDir(t, reachableTempDir(t))
			symlink(t, victim, filepath.Join(parent, "postgres"))
			return Config{Dir: filepath.Join(parent, "postgres"), relocateRoot: filepath.Join(reachableTempDir(t), "modshop")}, victim
		},
	}
	for name, plant := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, victim := plant(t)
			cfg.Port = freePort(t)
			before := owners(t, victim)

			s, err := Start(context.Background(), cfg)
			if err == nil {
				t.Cleanup(func() { _ = s.Stop(context.Background()) })
				t.Errorf("Start went ahead in %s", s.Dir())
			} else {
				t.Log(err)
			}
			if after := owners(t, victim); after != before {
				t.Errorf("root changed %s:\nbefore:\n%safter:\n%s", victim, before, after)
			}
		})
	}
}

// TestStart_AsRootRefusesAClusterThatBelongsToAnotherUser is `sudo modshop
// users create` while the shop runs as an ordinary user: root must not
// hand that user's cluster to the postgres account (the user's server then
// fails and the user is locked out of their own data).
func TestStart_AsRootRefusesAClusterThatBelongsToAnotherUser(t *testing.T) {
	pg := requireRoot(t)
	u := ordinaryUser(t)
	if u.uid == pg.uid {
		t.Skipf("PostgreSQL runs as %s, the only ordinary user here", pg.name)
	}
	home := mkdir(t, filepath.Join(reachableTempDir(t), "home"), 0o755)
	chownTo(t, home, u)
	cfg := Config{Dir: filepath.Join(home, "pg"), Port: freePort(t)}
	theirs := startOtherProcessAs(t, cfg, u)
	before := owners(t, filepath.Join(cfg.Dir, "data"))

	s, err := Start(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		t.Fatal("root's Start attached to a cluster that belongs to another user")
	}
	for _, want := range []string{cfg.Dir, "belongs to user " + u.name, "run modshop as that user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if after := owners(t, filepath.Join(cfg.Dir, "data")); after != before {
		t.Errorf("root changed the other user's cluster:\nbefore:\n%safter:\n%s", before, after)
	}
	// The user still runs, and stops, their own server.
	theirs.stop(t)
	if serverListens(cfg.Port) {
		t.Error("the other user could not stop their own server")
	}
}

// TestStart_AsRootGivesTheServerNoneOfItsEnvironment: what root's
// environment holds (the broker's URL with its password, cloud keys) is
// none of the postmaster's business, whose environment the postgres
// account and every database superuser can read.
func TestStart_AsRootGivesTheServerNoneOfItsEnvironment(t *testing.T) {
	requireRoot(t)
	const secret = "amqp://shop:a-broker-secret@127.0.0.1:5672/"
	t.Setenv("MODSHOP_AMQP_URL", secret)
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	s := startServer(t, cfg)

	pid, _, err := postmasterPIDFile(filepath.Join(s.Dir(), "data"))
	if err != nil || pid == 0 {
		t.Fatalf("no postmaster pid: %v", err)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Split(string(bytes.TrimRight(environ, "\x00")), "\x00")
	for _, kv := range vars {
		if strings.Contains(kv, "a-broker-secret") || strings.HasPrefix(kv, "MODSHOP_") {
			t.Errorf("the postmaster's environment holds %s", kv)
		}
	}
	if !containsString(vars, "HOME="+s.Dir()) {
		t.Errorf("the postmaster's HOME is not its directory %s: %q", s.Dir(), vars)
	}
	if !strings.Contains(string(environ), "PATH=") {
		t.Errorf("the postmaster has no PATH: %q", vars)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// postmasterPIDFile reads the PID in dataDir/postmaster.pid, as a test
// sees it (following links).
func postmasterPIDFile(dataDir string) (int, []string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, nil, err
	}
	lines := strings.Split(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	return pid, lines, err
}

// ordinaryUser is nobody, as whom a test runs modshop as an ordinary user.
func ordinaryUser(t *testing.T) *account {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no ordinary user to run as: %v", err)
	}
	a, err := newAccount(u)
	if err != nil {
		t.Fatal(err)
	}
	a.groups = []uint32{a.gid}
	return a
}
