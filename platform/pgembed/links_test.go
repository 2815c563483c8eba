package pgembed

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Once root has handed Dir to the account PostgreSQL runs as, that account
// can put a link where root expects one of its files. Root must not follow
// such a link out of Dir: it would create, read, or overwrite a file of
// root's choosing on the account's behalf. These tests plant the links;
// they need no server.

const rootSecret = "a line only root may read"

// plantLink makes dir/name a link to target, creating dir/name's parent.
func plantLink(t *testing.T, dir, name, target string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// openRoot opens dir as Start opens Dir.
func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// secretFile is a file outside every Dir, holding rootSecret.
func secretFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(rootSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func assertUnchanged(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != rootSecret+"\n" {
		t.Errorf("%s was changed through the link: %q, %v", path, b, err)
	}
}

func TestLockFiles_AreNotCreatedThroughALinkOutOfDir(t *testing.T) {
	t.Parallel()
	for name, open := range map[string]func(dir *os.Root) (func(), error){
		lockFile: func(dir *os.Root) (func(), error) { return lockDir(context.Background(), dir) },
		usersFile: func(dir *os.Root) (func(), error) {
			f, err := joinUsers(dir)
			if err != nil {
				return nil, err
			}
			return func() { _ = f.Close() }, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "nologin")
			plantLink(t, dir, name, outside)
			release, err := open(openRoot(t, dir))
			if err == nil {
				release()
				t.Errorf("opened %s through a link out of Dir", name)
			}
			if fileExists(outside) {
				t.Errorf("%s was created through the link %s", outside, name)
			}
		})
	}
}

func TestLoadOrCreatePassword_DoesNotFollowALinkOutOfDir(t *testing.T) {
	t.Parallel()
	t.Run("an existing file is not read", func(t *testing.T) {
		t.Parallel()
		dir, secret := t.TempDir(), secretFile(t)
		plantLink(t, dir, passwordFile, secret)
		got, err := loadOrCreatePassword(openRoot(t, dir))
		if err == nil || strings.Contains(got, rootSecret) {
			t.Errorf("loadOrCreatePassword = %q, %v: want an error, not the file the link leads to", got, err)
		}
	})
	t.Run("no file is written", func(t *testing.T) {
		t.Parallel()
		dir, outside := t.TempDir(), filepath.Join(t.TempDir(), "authorized_keys")
		plantLink(t, dir, passwordFile, outside)
		if _, err := loadOrCreatePassword(openRoot(t, dir)); err == nil {
			t.Error("loadOrCreatePassword wrote the password through a link out of Dir")
		}
		if fileExists(outside) {
			t.Errorf("%s was created through the link", outside)
		}
	})
}

func TestServerFiles_AreNotReadThroughALinkOutOfDir(t *testing.T) {
	t.Parallel()
	t.Run("links in Dir and Dir/data", func(t *testing.T) {
		t.Parallel()
		dir, secret := t.TempDir(), secretFile(t)
		plantLink(t, dir, logFile, secret)
		plantLink(t, dir, filepath.Join("data", "PG_VERSION"), secret)
		plantLink(t, dir, pidFile, secret)
		assertNotRead(t, openRoot(t, dir))
	})
	t.Run("Dir/data a link", func(t *testing.T) {
		t.Parallel()
		dir, secret := t.TempDir(), secretFile(t)
		plantLink(t, filepath.Dir(secret), "PG_VERSION", secret)
		plantLink(t, filepath.Dir(secret), "postmaster.pid", secret)
		plantLink(t, dir, "data", filepath.Dir(secret))
		assertNotRead(t, openRoot(t, dir))
	})
}

func assertNotRead(t *testing.T, dir *os.Root) {
	t.Helper()
	if tail := logTail(dir); strings.Contains(tail, rootSecret) {
		t.Errorf("logTail shows the file the link leads to:%s", tail)
	}
	if v, err := dataVersion(dir); strings.Contains(v, rootSecret) || (err != nil && strings.Contains(err.Error(), rootSecret)) {
		t.Errorf("dataVersion = %q, %v: read the file the link leads to", v, err)
	}
	// The secret is no PID: a read through the link shows in the error.
	if _, _, err := postmasterPID(dir); err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Errorf("postmasterPID = %v, want a refusal of the link", err)
	}
}

func TestCopyExecutable_DoesNotWriteThroughALinkOutOfDir(t *testing.T) {
	t.Parallel()
	exe := filepath.Join(t.TempDir(), "modshop")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	me := &account{name: "me", uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}

	t.Run("the copy's temporary file", func(t *testing.T) {
		t.Parallel()
		dir, secret := t.TempDir(), secretFile(t)
		plantLink(t, dir, filepath.Join("run", "pgembed-child.tmp"), secret)
		got, err := copyExecutable(exe, openRoot(t, dir), me)
		if err != nil {
			t.Fatalf("copyExecutable: %v", err)
		}
		assertUnchanged(t, secret)
		if b, err := os.ReadFile(got); err != nil || string(b) != "#!/bin/sh\n" {
			t.Errorf("the copy %s holds %q, %v", got, b, err)
		}
	})
	t.Run("the run directory", func(t *testing.T) {
		t.Parallel()
		dir, outside := t.TempDir(), t.TempDir()
		plantLink(t, dir, "run", outside)
		if _, err := copyExecutable(exe, openRoot(t, dir), me); err == nil {
			t.Error("copyExecutable copied through a link out of Dir")
		}
		if entries, _ := os.ReadDir(outside); len(entries) > 0 {
			t.Errorf("written into %s through the link: %v", outside, entries)
		}
	})
}

// The job carries the superuser password. The child's environment can be
// read from /proc for as long as the child runs, and is inherited by
// whatever it starts: the job goes on its standard input instead.
func TestChildCommand_KeepsTheJobOutOfTheEnvironment(t *testing.T) {
	t.Parallel()
	j := job{Dir: t.TempDir(), Port: 5432, Password: "the-superuser-password"}
	payload, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	me := &account{name: "me", uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	cmd := childCommand(context.Background(), "/bin/true", j.Dir, payload, me)

	for _, kv := range cmd.Env {
		if strings.Contains(kv, j.Password) {
			t.Errorf("the child's environment carries the password: %s=…", strings.SplitN(kv, "=", 2)[0])
		}
	}
	if cmd.Stdin == nil {
		t.Fatal("the child gets nothing on its standard input")
	}
	in, err := io.ReadAll(cmd.Stdin)
	if err != nil {
		t.Fatal(err)
	}
	var got job
	if err := json.Unmarshal(in, &got); err != nil || got != j {
		t.Errorf("standard input carries %q (%v), want the job %+v", in, err, j)
	}
}

// A postmaster works in its data directory; whatever path names that
// directory, this is how a live one is told from a process that got a
// stale postmaster.pid's PID. This process stands in for the postmaster:
// it works in the package's directory.
func TestPostmasterState_KnowsAPostmasterByItsDirectoryWhateverItsPath(t *testing.T) {
	t.Parallel()
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	symlink(t, cwd, link)
	throughLink, err := os.Stat(link)
	if err != nil {
		t.Fatal(err)
	}
	if got := postmasterState(os.Getpid(), throughLink); got != alive {
		t.Errorf("a postmaster working in its data directory, named through a link: state %d, want alive (%d)", got, alive)
	}
	elsewhere, err := os.Stat(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := postmasterState(os.Getpid(), elsewhere); got != otherProcess {
		t.Errorf("a process working elsewhere: state %d, want a recycled PID (%d)", got, otherProcess)
	}
}
