package pgembed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// defaultRelocateRoot is where root keeps clusters that the account
// PostgreSQL runs as cannot reach in place.
const defaultRelocateRoot = "/var/lib/modshop"

// placeDir returns the directory the server's files go in. It is dir,
// unless dir is a link (followed) or modshop runs as root and the account
// PostgreSQL runs as cannot reach dir, e.g. a clone under /root (mode
// 0700): the files then go in a directory of the relocation root named
// after dir's path, and dir becomes a link to it. The name is a hash of the
// path, so that each data directory gets its own cluster and finds it
// again even if the link is lost.
func placeDir(dir string, runAs *account, relocateRoot string, log *slog.Logger) (string, error) {
	if target, err := os.Readlink(dir); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(dir), target)
		}
		return target, nil
	}
	if runAs == nil {
		return dir, nil
	}
	blocked, err := runAs.blockedAt(dir)
	if err != nil || blocked == "" {
		return dir, err
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		// It may hold a cluster: moving it is the operator's call.
		return "", fmt.Errorf("%w; or move %s away, and modshop keeps a new cluster in %s",
			unreachableError(runAs.name, dir, blocked), dir, relocateRoot)
	}
	sum := sha256.Sum256([]byte(dir))
	target := filepath.Join(relocateRoot, hex.EncodeToString(sum[:8]))
	// #nosec G301 -- the account PostgreSQL runs as must traverse it to its cluster; it holds only clusters' directories (0700)
	if err := os.MkdirAll(relocateRoot, 0o755); err != nil {
		return "", fmt.Errorf("create %s for the cluster that user %s cannot reach in %s: %w", relocateRoot, runAs.name, dir, err)
	}
	if err := runAs.checkCanReach(target); err != nil {
		return "", err
	}
	// #nosec G301 -- parents of the link to the cluster: the account PostgreSQL runs as must traverse them
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create parent of %s: %w", dir, err)
	}
	// Another process starting at the same time may have made the same
	// link: it points to the same place.
	if err := os.Symlink(target, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("link %s to %s: %w", dir, target, err)
	}
	log.Info("embedded PostgreSQL keeps its data where its user can reach it",
		"dir", target, "linked_from", dir,
		"because", fmt.Sprintf("PostgreSQL runs as user %s, who cannot reach %s: %s", runAs.name, dir, blocked))
	return target, nil
}
