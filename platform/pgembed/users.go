package pgembed

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// usersFile is the register of the processes that use the server: each
// holds a shared flock on it from Start to Stop. The kernel drops a flock
// when its holder dies, kill -9 included, so the register never lists a
// process that is gone and needs no clean-up after a crash.
const usersFile = ".users"

// joinUsers adds this Server to the register. The caller holds the
// directory lock, under which nobody holds the register exclusively, so
// the shared lock is granted at once.
func joinUsers(dir *os.Root) (*os.File, error) {
	f, err := openUsers(dir)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("register as a user of the server in %s: %w", f.Name(), err)
	}
	return f, nil
}

// lastUser reports whether no process other than the caller (which has
// left the register) uses the server; when it returns true, the returned
// file holds the register exclusively until closed, which keeps late
// joiners out until the server is down. The caller holds the directory
// lock, without which nobody joins, so the answer stays true until then.
func lastUser(dir *os.Root) (last bool, held *os.File, err error) {
	f, err := openUsers(dir)
	if err != nil {
		return false, nil, err
	}
	err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		_ = f.Close()
		return false, nil, nil
	}
	if err != nil {
		_ = f.Close()
		return false, nil, fmt.Errorf("look for other users of the server in %s: %w", f.Name(), err)
	}
	return true, f, nil
}

func openUsers(dir *os.Root) (*os.File, error) {
	// Read-only is enough for flock, and lets root open the file after it
	// was handed to the postgres user. Like the lock file, only root and
	// Dir's owner open it.
	f, err := dir.OpenFile(usersFile, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the register of the server's users in %s: %w", dir.Name(), err)
	}
	return f, nil
}

// flock is syscall.Flock, retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
