package benchkit

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// FindPgbench returns the pgbench to use: the one on PATH, else the
// newest under /usr/lib/postgresql/*/bin (Debian) or /usr/pgsql-*/bin.
func FindPgbench() (string, error) {
	if p, err := exec.LookPath("pgbench"); err == nil {
		return p, nil
	}
	var found []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin/pgbench", "/usr/pgsql-*/bin/pgbench"} {
		m, _ := filepath.Glob(pattern)
		found = append(found, m...)
	}
	if len(found) == 0 {
		return "", fmt.Errorf("pgbench not found on PATH, in /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin (Debian: apt-get install postgresql-contrib or postgresql)")
	}
	slices.SortFunc(found, func(a, b string) int { return versionOf(b) - versionOf(a) })
	return found[0], nil
}

var versionDir = regexp.MustCompile(`(?:postgresql/|pgsql-)(\d+)`)

func versionOf(path string) int {
	if m := versionDir.FindStringSubmatch(path); m != nil {
		v, _ := strconv.Atoi(m[1])
		return v
	}
	return 0
}

// Pgbench runs the pgbench binary Bin against the database at DatabaseURL.
type Pgbench struct {
	Bin         string
	DatabaseURL string
}

// Init creates pgbench's tables at scale (pgbench -i -q -s scale).
func (p Pgbench) Init(ctx context.Context, scale int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// #nosec G204 -- pgbench found next to the PostgreSQL binaries, on the benchmark's own database
	out, err := exec.CommandContext(ctx, p.Bin, "-i", "-q", "-s", strconv.Itoa(scale), p.DatabaseURL).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

// Script is one of pgbench's built-in scripts.
type Script int

const (
	TPCB       Script = iota // the default TPC-B-like script: 3 updates, 1 select, 1 insert
	SelectOnly               // -S: one select by primary key
)

// Load is one pgbench run: Clients connections (-c) on Threads threads
// (-j) for Duration (-T, whole seconds, at least 1).
type Load struct {
	Script   Script
	Clients  int
	Threads  int
	Duration time.Duration
	// NoVacuum skips the vacuum pgbench runs on its tables first (-n);
	// select-only runs always skip it.
	NoVacuum bool
}

// Args are the arguments pgbench gets for the run, before the database URL.
func (l Load) Args() []string {
	var args []string
	if l.NoVacuum || l.Script == SelectOnly {
		args = append(args, "-n")
	}
	if l.Script == SelectOnly {
		args = append(args, "-S")
	}
	secs := max(int(l.Duration.Round(time.Second)/time.Second), 1)
	return append(args, "-c", strconv.Itoa(l.Clients), "-j", strconv.Itoa(max(l.Threads, 1)), "-T", strconv.Itoa(secs))
}

// PgbenchResult is what pgbench reported of a run.
type PgbenchResult struct {
	TPS       float64 // without initial connection time
	LatencyMs float64 // "latency average"; 0 when not reported
}

// Run runs the load and returns pgbench's figures.
func (p Pgbench) Run(ctx context.Context, l Load) (PgbenchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, l.Duration+2*time.Minute)
	defer cancel()
	args := append(l.Args(), p.DatabaseURL)
	// #nosec G204 -- pgbench found next to the PostgreSQL binaries, on the benchmark's own database
	out, err := exec.CommandContext(ctx, p.Bin, args...).CombinedOutput()
	if err != nil {
		return PgbenchResult{}, fmt.Errorf("pgbench %v: %w\n%s", l.Args(), err, out)
	}
	return ParsePgbench(out)
}

var (
	tpsLine     = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

// ParsePgbench reads the tps (without initial connection time) and the
// average latency from pgbench's output; a missing tps line is an error.
func ParsePgbench(out []byte) (PgbenchResult, error) {
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return PgbenchResult{}, fmt.Errorf("no tps line in pgbench's output:\n%s", out)
	}
	var r PgbenchResult
	var err error
	if r.TPS, err = strconv.ParseFloat(string(m[1]), 64); err != nil {
		return PgbenchResult{}, fmt.Errorf("pgbench tps %q: %w", m[1], err)
	}
	if m := latencyLine.FindSubmatch(out); m != nil {
		r.LatencyMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	return r, nil
}
