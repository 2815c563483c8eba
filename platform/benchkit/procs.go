package benchkit

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// ProcMark is the CPU time (in clock ticks, as /proc counts them) of the
// machine, of this process, of each process of a PostgreSQL server, of
// this process's children (a shop started as processes), of RabbitMQ's
// Erlang VM and of every other process, from which CPUSplit is measured.
type ProcMark struct {
	postmaster  int
	ok          bool
	busy, total uint64
	irq         uint64 // interrupts and softirqs (loopback traffic), which no process is charged for
	self        uint64
	server      map[int]uint64
	children    map[int]uint64
	broker      map[int]uint64
	others      map[int]commTicks // every other process (and kernel thread)
}

type commTicks struct {
	comm  string
	ticks uint64
}

// CPUSplit is how many cores were busy over a span, and with what.
type CPUSplit struct {
	OK                  bool
	Self, Server, Other float64 // this process, the PostgreSQL server, everything else (other processes, kernel)
	Children, Broker    float64 // this process's children, RabbitMQ (beam.smp); not in Other
	IRQ                 float64 // interrupts and softirqs; not in Other
	TopOthers           string  // the other processes that used the most, by command name
}

// MarkProcesses reads /proc (Linux); postmaster is the PostgreSQL server's
// main process (see Postmaster). Without /proc, or with postmaster 0 (the
// server runs elsewhere), the mark measures nothing and CPUSplit.OK is false.
func MarkProcesses(postmaster int) ProcMark {
	m := ProcMark{postmaster: postmaster, server: map[int]uint64{}, children: map[int]uint64{}, broker: map[int]uint64{}, others: map[int]commTicks{}}
	raw, err := os.ReadFile("/proc/stat")
	if err != nil || postmaster <= 0 {
		return m
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	t, ok := parseCPULine(line)
	if !ok {
		return m
	}
	m.busy, m.total, m.irq = t.busy, t.total, t.irq
	self := os.Getpid()
	_, _, m.self, _ = procInfo(self)
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return m
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, ppid, ticks, ok := procInfo(pid)
		switch {
		case !ok:
		case pid == postmaster || ppid == postmaster:
			m.server[pid] = ticks
		case ppid == self:
			m.children[pid] = ticks
		case comm == "beam.smp":
			m.broker[pid] = ticks
		case pid != self:
			m.others[pid] = commTicks{comm, ticks}
		}
	}
	m.ok = true
	return m
}

// Since splits the machine's busy time from m until now into cores. A
// server process that ended in between is counted as other.
func (m ProcMark) Since() CPUSplit { return m.until(MarkProcesses(m.postmaster)) }

func (m ProcMark) until(now ProcMark) CPUSplit {
	if !m.ok || !now.ok || now.total <= m.total {
		return CPUSplit{}
	}
	used := func(before, after map[int]uint64) float64 {
		var sum uint64
		for pid, t := range after {
			sum += t - min(before[pid], t) // new processes: all their time
		}
		return float64(sum)
	}
	cores := float64(now.total-m.total) / float64(runtime.NumCPU()) // ticks per core over the span
	busy, self := float64(now.busy-m.busy), float64(now.self-m.self)
	server, children, broker := used(m.server, now.server), used(m.children, now.children), used(m.broker, now.broker)
	irq := float64(now.irq - m.irq)
	return CPUSplit{OK: true, Self: self / cores, Server: server / cores, Children: children / cores, Broker: broker / cores, IRQ: irq / cores,
		Other: max(busy-self-server-children-broker-irq, 0) / cores, TopOthers: topOthers(m.others, now.others, cores)}
}

// topOthers names the three commands whose processes used the most CPU
// between two marks, with the cores they used.
func topOthers(before, after map[int]commTicks, cores float64) string {
	byComm := map[string]uint64{}
	for pid, a := range after {
		byComm[a.comm] += a.ticks - min(before[pid].ticks, a.ticks)
	}
	names := slices.SortedFunc(maps.Keys(byComm), func(a, b string) int {
		return cmp.Or(cmp.Compare(byComm[b], byComm[a]), strings.Compare(a, b))
	})
	var parts []string
	for _, n := range names[:min(3, len(names))] {
		if byComm[n] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", n, float64(byComm[n])/cores))
		}
	}
	return strings.Join(parts, ", ")
}

// Postmaster is the parent of a PostgreSQL backend (pg_backend_pid()),
// that is the server's main process, or 0 when the server does not run on
// this machine (or /proc cannot tell).
func Postmaster(backendPID int) int {
	_, ppid, _, ok := procInfo(backendPID)
	if !ok {
		return 0
	}
	return ppid
}

// procInfo reads a process's command name, parent and user+system clock ticks.
func procInfo(pid int) (comm string, ppid int, ticks uint64, ok bool) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, 0, false
	}
	return parseProcStat(string(raw))
}

// parseProcStat reads /proc/<pid>/stat: "pid (comm) state ppid ... utime
// stime ...", where comm may hold spaces and parentheses.
func parseProcStat(s string) (comm string, ppid int, ticks uint64, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	f := strings.Fields(s[end+1:]) // after "pid (comm)": state ppid ...
	if len(f) < 13 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return s[open+1 : end], ppid, utime + stime, true
}
