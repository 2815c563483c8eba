package pgembed

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// trustedDir resolves the absolute directory path as root would, following
// links, and fails unless the account PostgreSQL runs as is unable to
// change where it leads: no directory on the way may be one the account
// could change an entry of. A directory the account owns or may write is
// such a directory, except a sticky one (such as /tmp) where the entry is
// not the account's; and a link is followed out of a sticky, world-
// writable directory only when root or that directory's owner made it,
// as the kernel's protected_symlinks does. With create, missing
// directories are made (mode 0755, root's) one at a time and checked like
// the others; without, the path is returned as far as it exists, followed
// by the rest.
func (a *account) trustedDir(path string, create bool) (string, error) {
	const maxLinks = 40
	done, links := "/", 0
	doneInfo, err := os.Lstat(done)
	if err != nil {
		return "", err
	}
	todo := strings.Split(path, "/")
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			if doneInfo, err = os.Lstat(done); err != nil {
				return "", err
			}
			continue
		}
		next := filepath.Join(done, name)
		info, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) && create {
			// #nosec G301 -- the account PostgreSQL runs as must traverse it
			if err := os.Mkdir(next, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create %s: %w", next, err)
			}
			info, err = os.Lstat(next)
		}
		if errors.Is(err, fs.ErrNotExist) {
			if err := a.checkCannotChange(done, doneInfo, nil); err != nil {
				return "", err
			}
			return filepath.Join(append([]string{next}, todo...)...), nil
		}
		if err != nil {
			return "", fmt.Errorf("look at %s: %w", next, err)
		}
		if err := a.checkCannotChange(done, doneInfo, info); err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxLinks {
				return "", fmt.Errorf("resolve %s: too many links", path)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return "", fmt.Errorf("resolve %s: %w", path, err)
			}
			if filepath.IsAbs(target) {
				done = "/"
				if doneInfo, err = os.Lstat(done); err != nil {
					return "", err
				}
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if !info.IsDir() {
			return "", fmt.Errorf("%s is not a directory", next)
		}
		done, doneInfo = next, info
	}
	return done, nil
}

// checkCannotChange fails when the account could replace the entry
// (nil: not there yet) of the directory dir.
func (a *account) checkCannotChange(dir string, dirInfo, entry fs.FileInfo) error {
	st, ok := dirInfo.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	var entryUID uint32
	if entry != nil {
		if est, ok := entry.Sys().(*syscall.Stat_t); ok {
			entryUID = est.Uid
		}
	}
	sticky := dirInfo.Mode()&fs.ModeSticky != 0
	changeable := st.Uid == a.uid || // it may chmod its own directory
		(a.permits(dirInfo, 0o2) && !(sticky && (entry == nil || entryUID != a.uid)))
	if entry != nil && entry.Mode()&fs.ModeSymlink != 0 && sticky && dirInfo.Mode().Perm()&0o002 != 0 &&
		entryUID != 0 && entryUID != st.Uid {
		changeable = true
	}
	if !changeable {
		return nil
	}
	what := dir
	if entry != nil {
		what = filepath.Join(dir, entry.Name())
	}
	return fmt.Errorf("as root, modshop keeps the embedded cluster only where user %s, who runs PostgreSQL, cannot change what the path leads to, "+
		"but it can change %s (%s has mode %s and owner uid %d, gid %d): "+
		"set MODSHOP_DATA_DIR to a directory only root can change, or run modshop as an ordinary user",
		a.name, what, dir, dirInfo.Mode(), st.Uid, st.Gid)
}

// permits reports whether the account has the permission bits what (0o1
// search, 0o2 write) on the file described by info.
func (a *account) permits(info fs.FileInfo, what fs.FileMode) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := info.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&(what<<6) != 0
	case a.inGroup(st.Gid):
		return perm&(what<<3) != 0
	default:
		return perm&what != 0
	}
}
