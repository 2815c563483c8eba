package pgembed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// defaultRelocateRoot is where root keeps clusters that the account
// PostgreSQL runs as cannot reach in place.
const defaultRelocateRoot = "/var/lib/modshop"

// placeDir finds, or makes, the directory the server's files go in and
// opens it: every file pgembed touches there afterwards is reached
// through the returned os.Root, which stays on that directory whatever
// becomes of its path. The directory is dir, or where a link at dir leads.
// As root, see (*account).placeDir.
func placeDir(dir string, runAs *account, relocateRoot string, log *slog.Logger) (string, *os.Root, error) {
	if runAs != nil {
		return runAs.placeDir(dir, relocateRoot, log)
	}
	if target, err := os.Readlink(dir); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(dir), target)
		}
		dir = target
	}
	// #nosec G301 -- parents: nothing of ours is in them
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", nil, fmt.Errorf("create parent of %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", nil, fmt.Errorf("create %s: %w", dir, err)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return "", nil, err
	}
	return dir, r, nil
}

// placeDir is placeDir as root. Root hands the directory to the account
// PostgreSQL runs as, and then creates, writes and chowns files in it, so
// the account (and every database superuser, through COPY FROM PROGRAM)
// must not be able to choose which directory that is:
//   - the path to it must not pass through a directory the account may
//     change (trustedDir);
//   - a link at dir is followed only when it is the one root makes to the
//     relocated cluster, and even then the cluster is reached from the
//     relocation root, never through the link;
//   - the directory must belong to root or the account (openOwnedDir).
//
// When the account cannot reach dir, e.g. a clone under /root (mode
// 0700), the files go in a directory of the relocation root named after
// dir's path, and dir becomes a link to it. The name is a hash of the
// path, so that each data directory gets its own cluster and finds it
// again even if the link is lost.
func (a *account) placeDir(dir, relocateRoot string, log *slog.Logger) (string, *os.Root, error) {
	name := clusterName(dir)
	target := filepath.Join(relocateRoot, name)
	info, err := os.Lstat(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("look at %s: %w", dir, err)
	}
	if err == nil && info.Mode()&fs.ModeSymlink != 0 {
		if link, _ := os.Readlink(dir); link != target {
			return "", nil, fmt.Errorf("%s is a link to %s; as root, modshop follows no link there but the one it makes itself (to %s): "+
				"replace the link with the directory it leads to, or set MODSHOP_DATA_DIR elsewhere", dir, link, target)
		}
		return a.openRelocated(relocateRoot, name)
	}
	blocked, err := a.blockedAt(dir)
	if err != nil {
		return "", nil, err
	}
	if blocked == "" {
		return a.openInPlace(dir)
	}
	if info != nil {
		// It may hold a cluster: moving it is the operator's call.
		return "", nil, fmt.Errorf("%w; or move %s away, and modshop keeps a new cluster in %s",
			unreachableError(a.name, dir, blocked), dir, relocateRoot)
	}
	placed, r, err := a.openRelocated(relocateRoot, name)
	if err != nil {
		return "", nil, err
	}
	if err := a.linkTo(target, dir); err != nil {
		_ = r.Close() // a directory: nothing to flush
		return "", nil, err
	}
	log.Info("embedded PostgreSQL keeps its data where its user can reach it",
		"dir", placed, "linked_from", dir,
		"because", fmt.Sprintf("PostgreSQL runs as user %s, who cannot reach %s: %s", a.name, dir, blocked))
	return placed, r, nil
}

// clusterName is the name of dir's cluster in the relocation root.
func clusterName(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(sum[:8])
}

// openInPlace creates dir if need be and opens it.
func (a *account) openInPlace(dir string) (string, *os.Root, error) {
	// Checked before creating anything, so that a bad place leaves no litter.
	parent, err := a.trustedDir(filepath.Dir(dir), false)
	if err != nil {
		return "", nil, err
	}
	if err := a.checkCanReach(filepath.Join(parent, filepath.Base(dir))); err != nil {
		return "", nil, err
	}
	if parent, err = a.trustedDir(filepath.Dir(dir), true); err != nil {
		return "", nil, err
	}
	pr, err := os.OpenRoot(parent)
	if err != nil {
		return "", nil, err
	}
	defer pr.Close()
	if err := pr.Mkdir(filepath.Base(dir), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", nil, fmt.Errorf("create %s: %w", dir, err)
	}
	r, err := a.openOwnedDir(pr, filepath.Base(dir))
	if err != nil {
		return "", nil, err
	}
	return r.Name(), r, nil
}

// openRelocated creates and opens the cluster's directory name in the
// relocation root. Only root may change the relocation root: whoever else
// could would choose where root's files go.
func (a *account) openRelocated(relocateRoot, name string) (string, *os.Root, error) {
	resolved, err := a.trustedDir(relocateRoot, true)
	if err != nil {
		return "", nil, err
	}
	info, err := os.Lstat(resolved)
	if err != nil {
		return "", nil, err
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || st == nil || st.Uid != 0 || info.Mode().Perm()&0o022 != 0 {
		uid := -1
		if st != nil {
			uid = int(st.Uid)
		}
		return "", nil, fmt.Errorf("%s holds the clusters root runs as user %s, so only root may change it, but it has mode %s and owner uid %d: "+
			"give it to root (chown root %s; chmod go-w %s)", resolved, a.name, info.Mode(), uid, resolved, resolved)
	}
	if err := a.checkCanReach(filepath.Join(resolved, name)); err != nil {
		return "", nil, err
	}
	rr, err := os.OpenRoot(resolved)
	if err != nil {
		return "", nil, err
	}
	defer rr.Close()
	if err := rr.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", nil, fmt.Errorf("create %s: %w", filepath.Join(resolved, name), err)
	}
	r, err := a.openOwnedDir(rr, name)
	if err != nil {
		return "", nil, err
	}
	return r.Name(), r, nil
}

// linkTo makes dir a link to target, for people to find the cluster by
// (root itself never follows it). Another process starting at the same
// time may have made the same link.
func (a *account) linkTo(target, dir string) error {
	parent, err := a.trustedDir(filepath.Dir(dir), true)
	if err != nil {
		return err
	}
	pr, err := os.OpenRoot(parent)
	if err != nil {
		return err
	}
	defer pr.Close()
	name := filepath.Base(dir)
	err = pr.Symlink(target, name)
	if errors.Is(err, fs.ErrExist) {
		if link, _ := pr.Readlink(name); link == target {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("link %s to %s: %w", dir, target, err)
	}
	return nil
}

// openOwnedDir opens the directory name in parent, which must be a
// directory (not a link) that belongs to root or to the account.
func (a *account) openOwnedDir(parent *os.Root, name string) (*os.Root, error) {
	path := filepath.Join(parent.Name(), name)
	info, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%s is a link: as root, modshop does not follow it", path)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", path)
	}
	if err := a.checkOwner(path, info); err != nil {
		return nil, err
	}
	r, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	// Should the account have swapped the directory since the look above.
	if got, err := r.Stat("."); err != nil || !os.SameFile(got, info) {
		_ = r.Close()
		return nil, fmt.Errorf("%s changed while it was opened", path)
	}
	return r, nil
}

// checkCluster refuses a cluster (Dir/data; openOwnedDir checked Dir)
// that belongs to neither root nor the account: another user's, who runs
// modshop (and PostgreSQL) as themselves. Handing it to the account would
// break their running server and lock them out of their data.
func (a *account) checkCluster(r *os.Root) error {
	info, err := r.Stat("data")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look at %s: %w", filepath.Join(r.Name(), "data"), err)
	}
	return a.checkOwner(r.Name(), info)
}

func (a *account) checkOwner(dir string, info fs.FileInfo) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 || st.Uid == a.uid {
		return nil
	}
	owner := strconv.FormatUint(uint64(st.Uid), 10)
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username + " (uid " + owner + ")"
	}
	return fmt.Errorf("the embedded cluster in %s belongs to user %s; run modshop as that user "+
		"(as root it would hand the cluster to user %s, who runs PostgreSQL for root)", dir, owner, a.name)
}
