package benchkit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ResultsEnv names the file a benchmark appends its figures to (one JSON
// object a line), so that `make bench` can end with one table of every
// target and its figure from this run. The Makefile sets it; without it,
// Record writes nothing.
const ResultsEnv = "MODSHOP_BENCH_RESULTS"

// Figure is one measured value of a run, named by a key of the form
// "<benchmark>.<what>_<unit>" (for example "orders.commits_per_order" or
// "catalog.search_p30_p99_ms"); the table of targets knows the keys.
type Figure struct {
	Key   string    `json:"key"`
	Value float64   `json:"value"`
	At    time.Time `json:"at"`
}

// Record appends key = value to the results file named by
// MODSHOP_BENCH_RESULTS, if set. A later figure of the same key in the same
// file replaces an earlier one in the table.
func Record(key string, value float64) error {
	path := os.Getenv(ResultsEnv)
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("benchkit: results directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("benchkit: results file: %w", err)
	}
	line, err := json.Marshal(Figure{Key: key, Value: value, At: time.Now().UTC()})
	if err != nil {
		_ = f.Close()
		return err
	}
	_, werr := f.Write(append(line, '\n'))
	return errors.Join(werr, f.Close())
}

// ReadFigures reads a results file: the last figure of each key wins.
func ReadFigures(path string) (map[string]Figure, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]Figure{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var fig Figure
		if err := json.Unmarshal(sc.Bytes(), &fig); err != nil {
			return nil, fmt.Errorf("benchkit: %s line %d: %w", path, n, err)
		}
		out[fig.Key] = fig
	}
	return out, sc.Err()
}
