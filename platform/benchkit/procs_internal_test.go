package benchkit

import (
	"runtime"
	"testing"
)

func TestParseCPULine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, ok := parseCPULine("cpu  100 5 50 800 20 3 7 15 40 0")
	want := cpuTicks{busy: 100 + 5 + 50 + 3 + 7 + 15, total: 1000, irq: 10}
	if !ok || got != want {
		t.Errorf("parsed %+v (ok %v), want %+v: guest time is already in user", got, ok, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5", "cpu 1 2 x 4 5", "intr 1 2 3 4 5"} {
		if _, ok := parseCPULine(bad); ok {
			t.Errorf("%q parsed as the aggregate cpu line", bad)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50.
	line := "4242 (postgres: a (b) c) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 50 0 0 20 0 1 0 100 0 0"
	comm, ppid, ticks, ok := parseProcStat(line)
	if !ok || comm != "postgres: a (b) c" || ppid != 17 || ticks != 300 {
		t.Errorf("parsed %q, parent %d, %d ticks (ok %v); want the name, 17, 300", comm, ppid, ticks, ok)
	}
	if _, _, _, ok := parseProcStat("4242 no parentheses"); ok {
		t.Error("a line without a command name parsed")
	}
}

// The busy time between two marks is shared out in cores: the server's
// processes (a new backend counts whole), this process, the broker, the
// kernel's interrupts, and the rest as other, led by its busiest command.
func TestProcMarkSplit(t *testing.T) {
	cpus := float64(runtime.NumCPU())
	before := ProcMark{ok: true, busy: 1000, total: 5000, irq: 10, self: 100,
		server:   map[int]uint64{7: 200},
		children: map[int]uint64{},
		broker:   map[int]uint64{9: 50},
		others:   map[int]commTicks{11: {"chromium", 10}}}
	after := ProcMark{ok: true, busy: 1000 + 400, total: 5000 + 100*uint64(cpus), irq: 30, self: 160,
		server:   map[int]uint64{7: 260, 8: 40},
		children: map[int]uint64{},
		broker:   map[int]uint64{9: 70},
		others:   map[int]commTicks{11: {"chromium", 110}}}
	got := before.until(after)
	want := CPUSplit{OK: true, Self: 0.6, Server: 1, Broker: 0.2, IRQ: 0.2, Other: 2, TopOthers: "chromium 1.00"}
	if got != want {
		t.Errorf("split %+v, want %+v", got, want)
	}
	if (ProcMark{}).until(after).OK {
		t.Error("a split from an empty mark (no /proc, no server) claims to know")
	}
}
