package pgembed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv marks a re-executed copy of the binary as the pgembed child. The
// job comes on the child's standard input: it holds the superuser
// password, which an environment would show in /proc for as long as the
// child runs and pass on to whatever it starts.
const childEnv = "MODSHOP_PGEMBED_CHILD"

// childDone is what a child prints on success; its absence tells the parent
// that the binary never reached RunChildIfRequested.
const childDone = "pgembed: PostgreSQL started"

// RunChildIfRequested does the work of a re-executed pgembed child and exits
// when this process is one; otherwise it returns at once. Call it first thing
// in main and in every TestMain: when modshop runs as root, pgembed starts
// PostgreSQL by re-executing the current binary as an unprivileged user.
func RunChildIfRequested() {
	if _, ok := os.LookupEnv(childEnv); !ok {
		return
	}
	// The postmaster inherits our environment: it is no pgembed child.
	_ = os.Unsetenv(childEnv)
	if err := runJob(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(childDone)
	os.Exit(0)
}

func runJob(in io.Reader) error {
	var j job
	if err := json.NewDecoder(in).Decode(&j); err != nil {
		return fmt.Errorf("decode the job on standard input: %w", err)
	}
	// The parent checked permission bits; this catches what they do not show
	// (ACLs, mounts) before PostgreSQL fails with a less helpful message.
	probe, err := os.CreateTemp(j.Dir, ".access-check-*")
	if err != nil {
		name := strconv.Itoa(os.Getuid())
		if u, uerr := user.Current(); uerr == nil {
			name = u.Username
		}
		return unreachableError(name, j.Dir, err.Error())
	}
	// Only whether it could be created matters.
	_ = probe.Close()
	_ = os.Remove(probe.Name())
	return startWithLibrary(j)
}

// account is the unprivileged user PostgreSQL runs as when modshop is root.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// unprivilegedAccount returns the account to run PostgreSQL as, or nil when
// the current user will do: initdb and postgres refuse to run as root.
func unprivilegedAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if errors.As(err, new(user.UnknownUserError)) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look up user %s: %w", name, err)
		}
		return newAccount(u)
	}
	return nil, errors.New("PostgreSQL refuses to run as root and neither user postgres nor nobody exists to run it as: " +
		"run modshop as an ordinary user, or set MODSHOP_DATABASE_URL to an existing PostgreSQL database")
}

func newAccount(u *user.User) (*account, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", u.Username, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: gid %q: %w", u.Username, u.Gid, err)
	}
	a := &account{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	// Supplementary groups are set explicitly, or the child keeps root's.
	gids, err := u.GroupIds()
	if err != nil {
		gids = []string{u.Gid}
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	return a, nil
}

func (a *account) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: a.groups}}
}

// checkCanReach fails with a clear message when the account cannot traverse
// the existing parents of dir, e.g. a checkout under /root (mode 0700).
// Missing parents are fine: placeDir creates them with mode 0755.
func (a *account) checkCanReach(dir string) error {
	blocked, err := a.blockedAt(dir)
	if err != nil || blocked == "" {
		return err
	}
	return unreachableError(a.name, dir, blocked)
}

// blockedAt describes the first existing parent of dir that the account
// cannot traverse, or returns "" when there is none.
func (a *account) blockedAt(dir string) (string, error) {
	var parents []string
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		parents = append(parents, p)
		if p == filepath.Dir(p) {
			break
		}
	}
	for i := len(parents) - 1; i >= 0; i-- {
		info, err := os.Stat(parents[i])
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("check access to %s: %w", parents[i], err)
		}
		if !a.canSearch(info) {
			st, _ := info.Sys().(*syscall.Stat_t)
			return fmt.Sprintf("%s has mode %s and owner uid %d, gid %d",
				parents[i], info.Mode(), st.Uid, st.Gid), nil
		}
	}
	return "", nil
}

func (a *account) canSearch(info fs.FileInfo) bool {
	return a.permits(info, 0o1)
}

func (a *account) inGroup(gid uint32) bool {
	if gid == a.gid {
		return true
	}
	for _, g := range a.groups {
		if g == gid {
			return true
		}
	}
	return false
}

func unreachableError(userName, dir, detail string) error {
	return fmt.Errorf("PostgreSQL refuses to run as root, so modshop runs it as user %q, but %q cannot reach %s (%s). "+
		"Run modshop as an ordinary user, set MODSHOP_DATA_DIR to a directory user %q can reach, "+
		"or set MODSHOP_DATABASE_URL to an existing PostgreSQL database",
		userName, userName, dir, detail, userName)
}

// runChild re-executes the current binary as the account to start
// PostgreSQL. The child exits once the postmaster runs; the postmaster
// daemonizes and outlives it.
func runChild(ctx context.Context, j job, a *account, dir *os.Root) error {
	payload, err := json.Marshal(j) // #nosec G117 -- the job goes to the child on a pipe (its stdin), nowhere else
	if err != nil {
		return fmt.Errorf("encode child job: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable to re-execute: %w", err)
	}
	err = execChild(ctx, exe, j.Dir, payload, a)
	if errors.Is(err, syscall.EACCES) {
		// The account cannot reach our binary, e.g. a test binary in go
		// test's 0700 work directory: run a copy from Dir/run instead.
		if exe, err = copyExecutable(exe, dir, a); err != nil {
			return err
		}
		err = execChild(ctx, exe, j.Dir, payload, a)
	}
	return err
}

func execChild(ctx context.Context, exe, dir string, payload []byte, a *account) error {
	cmd := childCommand(ctx, exe, dir, payload, a)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Should a grandchild hold our pipes open, do not wait for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("re-execute %s as user %s: %w", exe, a.name, err)
	}
	err := cmd.Wait()
	done := strings.Contains(stdout.String(), childDone)
	switch {
	case err == nil && done:
		return nil
	case err == nil:
		return fmt.Errorf("%s ran as user %s but did not act as the pgembed child: call pgembed.RunChildIfRequested first thing in main and TestMain", exe, a.name)
	}
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		msg = lastBytes(strings.TrimSpace(stdout.String()), 2000)
	}
	return fmt.Errorf("as user %s (%v): %s", a.name, err, msg)
}

// childCommand is the command that runs exe as the pgembed child, as the
// account, with the job payload, for the server in dir.
func childCommand(ctx context.Context, exe, dir string, payload []byte, a *account) *exec.Cmd {
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(accountEnvironment(dir), childEnv+"=1")
	cmd.Stdin = bytes.NewReader(payload)
	// "/" rather than Dir: if the account cannot reach Dir, the child's own
	// check reports it better than a failed chdir would.
	cmd.Dir = "/"
	cmd.SysProcAttr = a.sysProcAttr()
	return cmd
}

// accountEnvironment is the environment of what root runs as the account:
// the child, which the postmaster inherits it from, and pg_ctl. The
// account and every database superuser (COPY FROM PROGRAM) can read it, so
// it holds none of root's (the broker's URL with its password, cloud
// credentials, HOME=/root), only what the programs need: PATH, the
// locale, the time zone, the Go race detector's options (the child is this
// binary) and, as HOME, Dir, the one directory the account has.
func accountEnvironment(dir string) []string {
	env := []string{"HOME=" + dir}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "LANG", name == "LANGUAGE", name == "TZ", name == "GORACE",
			strings.HasPrefix(name, "LC_"):
			env = append(env, kv)
		}
	}
	return env
}

// Dir belongs to the account by now: the copy is made through os.Root, so
// that a link the account put in its way (Dir/run, or the copy's name)
// cannot lead root's writes out of Dir.
func copyExecutable(exe string, r *os.Root, a *account) (string, error) {
	if err := r.Mkdir("run", 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("copy executable for user %s: %w", a.name, err)
	}
	// The library empties Dir/run as the account, so it must own it.
	if err := r.Chown("run", int(a.uid), int(a.gid)); err != nil {
		return "", fmt.Errorf("copy executable for user %s: %w", a.name, err)
	}
	dst := filepath.Join("run", "pgembed-child")
	if err := copyFile(exe, r, dst); err != nil {
		return "", fmt.Errorf("copy executable for user %s: %w", a.name, err)
	}
	return filepath.Join(r.Name(), dst), nil
}

// copyFile copies src to dst in r, executable by all: the account runs it.
func copyFile(src string, r *os.Root, dst string) error {
	in, err := os.Open(src) // #nosec G304 -- this process's own executable
	if err != nil {
		return err
	}
	defer in.Close()
	// Written aside and renamed: overwriting a binary in use fails
	// (ETXTBSY). Made afresh (O_EXCL), never written through whatever
	// was left in its place.
	tmp := dst + ".tmp"
	if err := r.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close() // the copy failed already
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return r.Rename(tmp, dst)
}

func lastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
