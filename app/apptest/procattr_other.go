//go:build !linux

package apptest

import "os/exec"

// setParentDeathSignal does nothing here: only Linux offers it.
func setParentDeathSignal(*exec.Cmd) {}
