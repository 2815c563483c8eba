package benchkit

import (
	"path/filepath"
	"testing"
)

func TestRecord_AppendsAndTheLastFigureOfAKeyWins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench", "results.jsonl")
	t.Setenv(ResultsEnv, path)
	for _, f := range []struct {
		key string
		v   float64
	}{{"orders.commits_per_order", 10.3}, {"chain.sustained_per_s", 996}, {"orders.commits_per_order", 6.5}} {
		if err := Record(f.key, f.v); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadFigures(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["orders.commits_per_order"].Value != 6.5 || got["chain.sustained_per_s"].Value != 996 {
		t.Fatalf("figures = %+v, want commits 6.5 and chain 996", got)
	}
}
