package app_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbedded_RootRunsInAPrivateDirectory is `make run` as root in a
// clone under a mode-0700 directory such as /root: the postgres user, which
// runs the database, cannot reach ./.data there, so the cluster is kept
// where it can, and the shop says where. The binary lies in the private
// directory too, as bin/modshop does.
func TestEmbedded_RootRunsInAPrivateDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	built, _ := buildBinary(t)
	home, err := os.MkdirTemp("", "modshop-root-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(home, "modshop")
	bin := filepath.Join(clone, "bin", "modshop")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	copyBinary(t, built, bin)

	c := newCheckout(t, bin, nil)
	c.dir, c.env = clone, nil // the default data directory: ./.data
	// Registered before the shop starts, so that it runs after the shop's
	// own cleanup has stopped the database.
	t.Cleanup(func() { removeRelocatedCluster(t, filepath.Join(clone, ".data", "postgres")) })

	p := c.serve(t, "")
	cluster, err := filepath.EvalSymlinks(filepath.Join(clone, ".data", "postgres"))
	if err != nil {
		t.Fatalf("find the cluster: %v\n%s", err, p.log)
	}
	if strings.HasPrefix(cluster, home) {
		t.Fatalf("the cluster is in %s, which user postgres cannot reach", cluster)
	}
	if !strings.Contains(p.log.String(), cluster) {
		t.Errorf("the shop does not say that the database lives in %s\n%s", cluster, p.log)
	}
	p.answers(t)
	out, err := c.run(t, "carol's password\n", "users", "create", "--username", "carol", "--email", "carol@example.com")
	if err != nil {
		t.Fatalf("modshop users create: %v\n%s", err, out)
	}
	p.stop(t)

	p = c.serve(t, "")
	p.logIn(t, "carol", "carol's password")
	p.stop(t)
}

// removeRelocatedCluster deletes the cluster the link at path points to.
func removeRelocatedCluster(t *testing.T, path string) {
	target, err := os.Readlink(path)
	if err != nil {
		return
	}
	if err := os.RemoveAll(target); err != nil {
		t.Errorf("remove the test's cluster: %v", err)
	}
}

func copyBinary(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}
