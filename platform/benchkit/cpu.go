package benchkit

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit /proc counts CPU time in (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

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

// CPUUse is how much CPU a span used.
type CPUUse struct {
	Wall        time.Duration // the span
	ProcessTime time.Duration // CPU time of this process (all its threads)
	MachineBusy time.Duration // busy time summed over all the machine's cores; 0 if unknown
	Process     float64       // cores used by this process; 0 if unknown
	Machine     float64       // fraction of all the machine's cores busy; -1 if unknown
}

// Since is the CPU used from m until now.
func (m CPUMark) Since() CPUUse { return m.until(MarkCPU()) }

func (m CPUMark) until(now CPUMark) CPUUse {
	u := CPUUse{Wall: now.wall.Sub(m.wall), ProcessTime: now.proc - m.proc, Machine: -1}
	if u.Wall > 0 {
		u.Process = float64(u.ProcessTime) / float64(u.Wall)
	}
	if !m.machineErr && !now.machineErr && now.tot > m.tot {
		u.Machine = float64(now.busy-m.busy) / float64(now.tot-m.tot)
		u.MachineBusy = time.Duration(now.busy-m.busy) * clockTick
	}
	return u
}

// String is "cores of this process / % of the machine's cores", as the
// reports print it: "0.85 / 47% of 2".
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
// total clock ticks. Elsewhere it reports failure.
func machineTicks() (busy, total uint64, failed bool) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, true
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	t, ok := parseCPULine(line)
	if !ok {
		return 0, 0, true
	}
	return t.busy, t.total, false
}

// cpuTicks are the fields of /proc/stat's aggregate "cpu" line, in clock ticks.
type cpuTicks struct {
	busy, total uint64
	irq         uint64 // irq and softirq: work no process is charged for
}

// parseCPULine reads "cpu user nice system idle iowait irq softirq steal
// guest guest_nice": busy is all but idle and iowait; guest and guest_nice
// are already counted in user and nice.
func parseCPULine(line string) (cpuTicks, bool) {
	var t cpuTicks
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return t, false
	}
	for i, s := range f[1:min(len(f), 9)] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTicks{}, false
		}
		t.total += v
		if i != 3 && i != 4 { // idle, iowait
			t.busy += v
		}
		if i == 5 || i == 6 {
			t.irq += v
		}
	}
	return t, true
}
