package apptest

// This file builds the modshop binary the split shop's processes run,
// once per test binary.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// mainPackage is modshop's main package.
const mainPackage = "github.com/modshop/modshop"

var built struct {
	once sync.Once
	path string
	err  error
}

// splitBinary builds modshop once per test binary, with the race detector
// when the tests run with it, so that the processes are checked too.
func splitBinary(tb testing.TB) string {
	tb.Helper()
	built.once.Do(func() {
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("modshop-split-%d", os.Getuid()))
		if built.err = os.MkdirAll(dir, 0o755); built.err != nil { // #nosec G301 -- holds only test builds of modshop: nothing to hide
			return
		}
		tmp, err := os.CreateTemp(dir, "build-*")
		if err != nil {
			built.err = err
			return
		}
		_ = tmp.Close() // go build writes the file anew
		args := []string{"build", "-o", tmp.Name()}
		name := "modshop"
		if raceEnabled {
			args = append(args, "-race")
			name += "-race"
		}
		goCmd, err := exec.LookPath("go")
		if err != nil {
			goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		// By import path, from the test's package folder: the go command
		// finds the module's root itself.
		cmd := exec.Command(goCmd, append(args, mainPackage)...) // #nosec G204 -- the go command building this repository
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.Remove(tmp.Name())
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		// One binary per test process: another test binary (another
		// engineer's, another package's) may build a different tree into
		// the same folder meanwhile, and a restarted process must run this
		// one's build. Builds of test processes that have ended go.
		removeStaleBuilds(dir)
		built.path = filepath.Join(dir, fmt.Sprintf("%s-%d", name, os.Getpid()))
		built.err = os.Rename(tmp.Name(), built.path)
	})
	if built.err != nil {
		tb.Fatalf("build modshop: %v", built.err)
	}
	return built.path
}

// removeStaleBuilds deletes the binaries that test processes no longer
// running built into dir (modshop-<pid> and modshop-race-<pid>).
func removeStaleBuilds(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		i := strings.LastIndexByte(name, '-')
		if !strings.HasPrefix(name, "modshop") || i < 0 {
			continue
		}
		pid, err := strconv.Atoi(name[i+1:])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.Remove(filepath.Join(dir, name)) // another run may be removing it too
		}
	}
}
