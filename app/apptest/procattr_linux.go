package apptest

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills a child process when the test binary dies,
// so that no shop outlives a crashed or timed-out test.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
