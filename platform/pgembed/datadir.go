package pgembed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	passwordFile = "superuser-password"
	logFile      = "postgres.log"
	lockFile     = ".lock"
	readyTimeout = 60 * time.Second
)

// Once Dir is handed to the account PostgreSQL runs as, that account could
// replace any file in it with a link to a file of root's choosing, for root
// to create, read or overwrite on its behalf. So the files root opens in
// Dir (or in Dir/data) are opened through os.Root, which refuses a link
// that leads out of the directory.

// openIn is os.OpenFile of name in dir, refusing a link out of dir.
func openIn(dir, name string, flag int, perm fs.FileMode) (*os.File, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.OpenFile(name, flag, perm)
}

// readIn is os.ReadFile of name in dir, refusing a link out of dir.
func readIn(dir, name string) ([]byte, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadFile(name)
}

// prepareDir creates Dir so that the account PostgreSQL runs as can use it.
// Parents get 0755 rather than MkdirAll's single mode, because a 0700 parent
// created by root would lock the postgres user out.
func prepareDir(dir string, runAs *account) error {
	if runAs != nil {
		// Checked before creating anything, so a bad location leaves no litter.
		if err := runAs.checkCanReach(dir); err != nil {
			return err
		}
	}
	// #nosec G301 -- the account PostgreSQL runs as must traverse the parents; they hold no files of ours
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("create parent of %s: %w", dir, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// lockDir takes an exclusive flock on Dir/.lock, so that two processes
// starting at once do not both run initdb: the second waits, then finds the
// server running. The lock is released by the returned function or when the
// process dies. Only modshop processes open it: root (which the mode does
// not bind) or Dir's owner, so it is private to the owner.
func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := openIn(dir, lockFile, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			// Closing the descriptor releases the lock; a read-only file has nothing to flush.
			return func() { _ = f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for lock %s (another process is starting or stopping the server): %w", path, ctx.Err())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// loadOrCreatePassword returns the superuser password, generating it on first
// use. A random password rather than the library's "postgres" because any
// local user can reach 127.0.0.1.
func loadOrCreatePassword(dir string) (string, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return "", fmt.Errorf("read superuser password: %w", err)
	}
	defer r.Close()
	b, err := r.ReadFile(passwordFile)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read superuser password: %w", err)
	}
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate superuser password: %w", err)
	}
	password := hex.EncodeToString(raw)
	if err := r.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write superuser password: %w", err)
	}
	return password, nil
}

// dataVersion returns the major version in data/PG_VERSION, or "" when there
// is no cluster yet.
func dataVersion(dataDir string) (string, error) {
	b, err := readIn(dataDir, "PG_VERSION")
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cluster version: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// postmasterPID reads the PID and port from data/postmaster.pid; pid is 0
// when there is no such file.
func postmasterPID(dataDir string) (pid int, port string, err error) {
	path := filepath.Join(dataDir, "postmaster.pid")
	b, err := readIn(dataDir, "postmaster.pid")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read %s: %w", path, err)
	}
	// Line 1 is the PID, line 4 the port.
	lines := strings.Split(string(b), "\n")
	pid, err = strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		// Not yet complete: a server is starting outside our lock.
		return 0, "", fmt.Errorf("%s has no valid PID: is something else starting a server there?", path)
	}
	if len(lines) >= 4 {
		port = strings.TrimSpace(lines[3])
	}
	return pid, port, nil
}

// findRunning reports whether a postmaster is running on the data directory
// and listening on the configured port. It clears the way for a new one when
// the last one died.
func (s *Server) findRunning() (bool, error) {
	pid, port, err := postmasterPID(s.dataDir())
	if err != nil || pid == 0 {
		return false, err
	}
	switch postmasterState(pid, s.dataDir()) {
	case gone:
		return false, nil
	case dying:
		// Killed but not yet reaped by its parent: PostgreSQL counts a
		// zombie as a live owner of the lock file, so give the parent a
		// moment (pid 1 in a container may reap only every second or so).
		waitGone(pid, s.dataDir(), 5*time.Second)
		return false, nil
	case otherProcess:
		// A stale file whose PID now belongs to something else (typical after
		// a container restart). PostgreSQL would refuse to start if that
		// process belongs to its user, so the file is removed here.
		path := filepath.Join(s.dataDir(), "postmaster.pid")
		s.log.Info("removing stale postmaster.pid", "pid", pid, "path", path)
		if err := os.Remove(path); err != nil {
			return false, fmt.Errorf("remove stale %s: %w", path, err)
		}
		return false, nil
	}
	if want := strconv.FormatUint(uint64(s.cfg.Port), 10); port != want {
		return false, fmt.Errorf("a PostgreSQL server (pid %d) already runs on this data directory but listens on port %q, not %s: stop it or configure port %s",
			pid, port, want, port)
	}
	return true, nil
}

// postmasterAlive reports whether the data directory's postmaster is up; it
// lets waitReady give up on a server that has died.
func (s *Server) postmasterAlive() bool {
	pid, _, err := postmasterPID(s.dataDir())
	return err == nil && pid != 0 && postmasterState(pid, s.dataDir()) == alive
}

type processState int

const (
	gone         processState = iota
	dying                     // a zombie
	otherProcess              // the PID was recycled
	alive
)

// postmasterState tells what became of the postmaster with this PID. Where
// /proc exists it also tells a zombie and a recycled PID from a live
// postmaster: the postmaster keeps its command line, which names the data
// directory.
func postmasterState(pid int, dataDir string) processState {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return gone
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return alive
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return dying
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && !bytes.Contains(cmdline, []byte("\x00"+dataDir+"\x00")) {
		return otherProcess
	}
	return alive
}

func waitGone(pid int, dataDir string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for postmasterState(pid, dataDir) == dying && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// chownTree hands Dir and what root left in it (the lock and password
// files, a tree from a run as another user) to the account PostgreSQL runs
// as. It does not descend into directories the account already owns: what
// lies below was made by the account itself, and walking it as root would
// let the account redirect the chown through symlinks. The walk is
// confined to Dir (os.Root), so that a directory the account swaps for a
// link while it runs cannot lead the chown out of Dir either.
func chownTree(dir string, a *account) error {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("hand %s to user %s: %w", dir, a.name, err)
	}
	defer r.Close()
	err = fs.WalkDir(r.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while walking, e.g. by a running server
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Uid == a.uid {
			if d.IsDir() && path != "." {
				return fs.SkipDir
			}
			return nil
		}
		return r.Lchown(path, int(a.uid), int(a.gid))
	})
	if err != nil {
		return fmt.Errorf("hand %s to user %s: %w", dir, a.name, err)
	}
	return nil
}

func connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

func isAuthError(err error) bool {
	var pgErr *pgconn.PgError
	// 28P01 invalid_password, 28000 invalid_authorization_specification.
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// logTail returns the end of the server log, formatted to append to an error.
func logTail(dir string) string {
	path := filepath.Join(dir, logFile)
	b, err := readIn(dir, logFile)
	text := strings.TrimSpace(string(b))
	if err != nil || text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Sprintf("\nlast lines of %s:\n%s", path, strings.Join(lines, "\n"))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
