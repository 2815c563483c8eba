package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// CPUMark is a point from which the CPU used by this process and by the
// whole machine can be measured.
type CPUMark struct {
	wall       time.Time
	proc       time.Duration
	busy, tot  uint64
	machineErr bool
}

// MarkCPU starts measuring CPU use.
func MarkCPU() CPUMark {
	m := CPUMark{wall: time.Now(), proc: processCPU()}
	m.busy, m.tot, m.machineErr = machineTicks()
	return m
}

// CPUUse is how much CPU a phase used.
type CPUUse struct {
	Process float64 // cores used by this process (shop + load generator); 0 if unknown
	Machine float64 // fraction of all the machine's cores busy; -1 if unknown
}

// Since is the CPU used from m until now.
func (m CPUMark) Since() CPUUse {
	now := MarkCPU()
	u := CPUUse{Machine: -1}
	if wall := now.wall.Sub(m.wall); wall > 0 {
		u.Process = float64(now.proc-m.proc) / float64(wall)
	}
	if !m.machineErr && !now.machineErr && now.tot > m.tot {
		u.Machine = float64(now.busy-m.busy) / float64(now.tot-m.tot)
	}
	return u
}

func (u CPUUse) String() string {
	s := "?"
	if u.Process > 0 {
		s = strconv.FormatFloat(u.Process, 'f', 2, 64)
	}
	s += " / "
	if u.Machine >= 0 {
		s += strconv.FormatFloat(u.Machine*100, 'f', 0, 64) + "% of " + strconv.Itoa(runtime.NumCPU())
	} else {
		s += "?"
	}
	return s
}

// machineTicks reads the aggregate line of /proc/stat (Linux): busy and
// total jiffies. Elsewhere it reports failure.
func machineTicks() (busy, total uint64, failed bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, true
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0, true
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, true
		}
		if i >= 8 { // guest and guest_nice are already counted in user and nice
			break
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, false
}
