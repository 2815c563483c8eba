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
	pidFile      = "data/postmaster.pid"
	readyTimeout = 60 * time.Second
)

// Once Dir is handed to the account PostgreSQL runs as, that account could
// replace any file in it with a link to a file of root's choosing, for root
// to create, read or overwrite on its behalf; Dir/data itself included.
// So the files root opens in Dir are opened through the os.Root of Dir that
// placeDir opened, which refuses a link that leads out of the directory.

// lockDir takes an exclusive flock on Dir/.lock, so that two processes
// starting at once do not both run initdb: the second waits, then finds the
// server running. The lock is released by the returned function or when the
// process dies. Only modshop processes open it: root (which the mode does
// not bind) or Dir's owner, so it is private to the owner.
func lockDir(ctx context.Context, dir *os.Root) (unlock func(), err error) {
	path := filepath.Join(dir.Name(), lockFile)
	f, err := dir.OpenFile(lockFile, os.O_RDONLY|os.O_CREATE, 0o600)
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
func loadOrCreatePassword(r *os.Root) (string, error) {
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
func dataVersion(dir *os.Root) (string, error) {
	b, err := dir.ReadFile(filepath.Join("data", "PG_VERSION"))
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
func postmasterPID(dir *os.Root) (pid int, port string, err error) {
	path := filepath.Join(dir.Name(), pidFile)
	b, err := dir.ReadFile(pidFile)
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
	pid, port, err := postmasterPID(s.dir)
	if err != nil || pid == 0 {
		return false, err
	}
	switch postmasterState(pid, s.dataInfo()) {
	case gone:
		return false, nil
	case dying:
		// Killed but not yet reaped by its parent: PostgreSQL counts a
		// zombie as a live owner of the lock file, so give the parent a
		// moment (pid 1 in a container may reap only every second or so).
		s.waitGone(pid, 5*time.Second)
		return false, nil
	case otherProcess:
		// A stale file whose PID now belongs to something else (typical after
		// a container restart). PostgreSQL would refuse to start if that
		// process belongs to its user, so the file is removed here.
		path := filepath.Join(s.dir.Name(), pidFile)
		s.log.Info("removing stale postmaster.pid", "pid", pid, "path", path)
		if err := s.dir.Remove(pidFile); err != nil {
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
	pid, _, err := postmasterPID(s.dir)
	return err == nil && pid != 0 && postmasterState(pid, s.dataInfo()) == alive
}

// dataInfo describes Dir/data, or is nil when that cannot be read.
func (s *Server) dataInfo() fs.FileInfo {
	info, err := s.dir.Stat("data")
	if err != nil {
		return nil
	}
	return info
}

type processState int

const (
	gone         processState = iota
	dying                     // a zombie
	otherProcess              // the PID was recycled
	alive
)

// postmasterState tells what became of the postmaster with this PID, whose
// data directory is described by data. Where /proc exists it also tells a
// zombie and a recycled PID from a live postmaster: a postmaster works in
// its data directory. That is the directory itself, however it was named:
// two processes may reach it by different paths. When that cannot be read
// (root without CAP_SYS_PTRACE, as in a container, may not read another
// user's), a process counts as alive unless its command line shows it is
// no PostgreSQL program: removing a live postmaster's postmaster.pid
// makes it shut down.
func postmasterState(pid int, data fs.FileInfo) processState {
	switch err := syscall.Kill(pid, 0); {
	case errors.Is(err, syscall.ESRCH):
		return gone
	case errors.Is(err, syscall.EPERM):
		// Another user's process: a postmaster runs as the user who
		// starts it (root signals any process), and PostgreSQL itself
		// takes the file over in this case.
		return otherProcess
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return alive
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
		return dying
	}
	if cwd, err := os.Stat(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && data != nil {
		if os.SameFile(cwd, data) {
			return alive
		}
		return otherProcess
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err == nil && len(cmdline) > 0 && !bytes.Contains(cmdline, []byte("postgres")) {
		return otherProcess
	}
	return alive
}

func (s *Server) waitGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for postmasterState(pid, s.dataInfo()) == dying && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// chownTree hands Dir and what root left in it (the lock and password
// files, a tree from a run as another user) to the account PostgreSQL runs
// as. It does not descend into directories the account already owns: what
// lies below was made by the account itself, and walking it as root would
// let the account redirect the chown through symlinks. The walk is
// confined to Dir (os.Root), so that a directory the account swaps for a
// link while it runs cannot lead the chown out of Dir either. It is never
// called while a postmaster runs on Dir: that postmaster's files are not
// root's to hand around.
func chownTree(r *os.Root, a *account) error {
	dir := r.Name()
	err := fs.WalkDir(r.FS(), ".", func(path string, d fs.DirEntry, err error) error {
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
func logTail(dir *os.Root) string {
	path := filepath.Join(dir.Name(), logFile)
	b, err := dir.ReadFile(logFile)
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
