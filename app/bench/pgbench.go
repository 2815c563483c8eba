package bench

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

// PgbenchInit creates pgbench's tables at scale in the database at dbURL.
func PgbenchInit(ctx context.Context, bin, dbURL string, scale int) error {
	// #nosec G204 -- pgbench found next to the PostgreSQL binaries, on the benchmark's own database
	out, err := exec.CommandContext(ctx, bin, "-i", "-q", "-s", strconv.Itoa(scale), dbURL).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// PgbenchSelectOnly runs pgbench's built-in select-only script (-S) and
// returns its tps (without initial connection time).
func PgbenchSelectOnly(ctx context.Context, bin, dbURL string, clients, threads int, d time.Duration) (float64, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	// #nosec G204 -- pgbench found next to the PostgreSQL binaries, on the benchmark's own database
	out, err := exec.CommandContext(ctx, bin, "-n", "-S",
		"-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads), "-T", strconv.Itoa(secs), dbURL).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -S: %w\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -S: no tps line in its output:\n%s", out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}
