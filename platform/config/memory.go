package config

import (
	"math"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// ProcessMemory is the memory this process may use, for defaults sized
// from it: the least of GOMEMLIMIT, the cgroup's memory limit and physical
// memory, with where it came from; 0 when none is known.
func ProcessMemory() (bytes uint64, source string) {
	consider := func(v uint64, from string) {
		if v > 0 && (bytes == 0 || v < bytes) {
			bytes, source = v, from
		}
	}
	if v, err := memlimit.FromSystem(); err == nil {
		consider(v, "physical memory")
	}
	if v, err := memlimit.FromCgroup(); err == nil {
		consider(v, "cgroup limit")
	}
	if v := debug.SetMemoryLimit(-1); v > 0 && v < math.MaxInt64 {
		consider(uint64(v), "GOMEMLIMIT")
	}
	return bytes, source
}
