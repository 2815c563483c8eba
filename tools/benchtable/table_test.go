package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func rowOf(t *testing.T, rows []Row, measure string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Measure == measure {
			return r
		}
	}
	t.Fatalf("no row %q", measure)
	return Row{}
}

// Each kind of target: a ratio of two keys (at least), a ratio (at most),
// a plain figure (at most, strictly below), met on either side of its
// limit and at the limit itself.
func TestEvaluate_ComparesEachFigureWithItsLimit(t *testing.T) {
	for _, c := range []struct {
		name    string
		target  Target
		figures map[string]float64
		figure  string
		from    string
		want    Status
	}{
		{"ratio above", Target{Num: "a", Den: "b", Cmp: AtLeast, Limit: 0.4, Decimals: 2}, map[string]float64{"a": 1024, "b": 3165}, "0.32", "1024 / 3165", NotMet},
		{"ratio at the limit", Target{Num: "a", Den: "b", Cmp: AtLeast, Limit: 0.5, Decimals: 2}, map[string]float64{"a": 50, "b": 100}, "0.50", "50.0 / 100", Met},
		{"rounded up to the limit is not the limit", Target{Num: "a", Den: "b", Cmp: AtLeast, Limit: 0.4, Decimals: 2}, map[string]float64{"a": 398, "b": 1000}, "0.40", "398 / 1000", NotMet},
		{"ratio at most", Target{Num: "a", Den: "b", Cmp: AtMost, Limit: 2, Decimals: 1}, map[string]float64{"a": 8.5, "b": 1.8}, "4.7", "8.50 / 1.80", NotMet},
		{"ratio at most, met", Target{Num: "a", Den: "b", Cmp: AtMost, Limit: 2, Decimals: 1}, map[string]float64{"a": 3.5, "b": 1.8}, "1.9", "3.50 / 1.80", Met},
		{"plain at most, at the limit", Target{Num: "a", Cmp: AtMost, Limit: 6, Decimals: 1}, map[string]float64{"a": 6}, "6.0", "", Met},
		{"strictly below, at the limit", Target{Num: "a", Cmp: Below, Limit: 150, Unit: "ms"}, map[string]float64{"a": 150}, "150 ms", "", NotMet},
		{"strictly below, met", Target{Num: "a", Cmp: Below, Limit: 150, Unit: "ms"}, map[string]float64{"a": 112.4}, "112 ms", "", Met},
		// 42/s at 750 tps against 185/s at 500 tps: 0.056 ÷ 0.37, not 42 ÷ 185.
		{"ratio of ratios to their baselines", Target{Num: "a", NumRef: "ra", Den: "b", DenRef: "rb", Cmp: AtLeast, Limit: 0.5, Decimals: 2},
			map[string]float64{"a": 42, "ra": 750, "b": 185, "rb": 500}, "0.15", "(42.0 / 750) / (185 / 500)", NotMet},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.target.Measure = c.name
			r := Evaluate([]Target{c.target}, c.figures)[0]
			if r.Status != c.want || r.Figure != c.figure || r.From != c.from {
				t.Errorf("row %+v, want figure %q from %q, %s", r, c.figure, c.from, c.want)
			}
		})
	}
}

// A target whose figure (or either side of its ratio) the run did not
// record is "not run", naming what is missing; so is a ratio to a
// baseline of zero. Never "met".
func TestEvaluate_MissingFiguresAreNotRun(t *testing.T) {
	figures := map[string]float64{
		"orders.sustained_confirmed_per_s": 212,
		"bus.sustained_per_s":              3000,
		"bus.tpcb_tps":                     0,
	}
	rows := Evaluate(Targets, figures)
	if len(rows) != len(Targets) {
		t.Fatalf("%d rows for %d targets", len(rows), len(Targets))
	}
	saga := rowOf(t, rows, Targets[0].Measure)
	if want := []string{"orders.tpcb_tps", "chain.sustained_per_s", "chain.tpcb_tps"}; saga.Status != NotRun || saga.Figure != "-" || !slices.Equal(saga.Missing, want) {
		t.Errorf("saga ÷ chain without the chain's figures: %+v, want not run, missing %v", saga, want)
	}
	bus := rowOf(t, rows, "bus: sustained ÷ pgbench TPC-B")
	if bus.Status != NotRun || bus.Figure != "-" {
		t.Errorf("a ratio to a zero baseline: %+v, want not run", bus)
	}
	search := rowOf(t, rows, "search page 30 p99, 1,000,000 products")
	if search.Status != NotRun || !slices.Equal(search.Missing, []string{"catalog.search_p30_p99_ms"}) {
		t.Errorf("catalog not run: %+v", search)
	}
	if met, notMet, notRun := Counts(rows); met != 0 || notMet != 0 || notRun != len(Targets) {
		t.Errorf("counts %d met, %d not met, %d not run; want all not run", met, notMet, notRun)
	}
}

// Every key a target reads is one of the fixed names the benchmarks
// record (common.md), so a typo here cannot leave a target "not run"
// forever.
func TestTargets_ReadOnlyTheRecordedKeys(t *testing.T) {
	recorded := strings.Fields(`orders.tpcb_tps orders.sustained_confirmed_per_s orders.cpu_ms_per_order
		orders.statements_per_order orders.commits_per_order orders.p50_ms_at_10_per_s
		orders.p99_ms_at_half orders.half_rate_per_s chain.tpcb_tps chain.sustained_per_s chain.cpu_ms_per_chain
		bus.tpcb_tps bus.idle_hop_p50_ms bus.sustained_per_s products.select_only_tps products.get_by_id_per_s
		catalog.select_only_tps catalog.search_p1_p50_ms catalog.search_p1_p99_ms catalog.search_p30_p50_ms
		catalog.search_p30_p99_ms catalog.category_p50_ms catalog.category_p99_ms`)
	for _, tg := range Targets {
		for _, k := range []string{tg.Num, tg.NumRef, tg.Den, tg.DenRef} {
			if k != "" && !slices.Contains(recorded, k) {
				t.Errorf("target %q reads %q, which no benchmark records", tg.Measure, k)
			}
		}
	}
	for _, b := range Baselines {
		if !slices.Contains(recorded, b.Key) {
			t.Errorf("baseline %q is not a recorded key", b.Key)
		}
	}
}

// The program reads a results file (the last figure of a key wins) and
// prints the markdown section with the run's figures and baselines.
func TestRun_PrintsTheMarkdownOfAResultsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	lines := `{"key":"chain.sustained_per_s","value":996,"at":"2026-12-04T10:40:00Z"}
{"key":"chain.tpcb_tps","value":3538,"at":"2026-12-04T10:38:00Z"}
{"key":"chain.sustained_per_s","value":1024,"at":"2026-12-04T10:41:00Z"}
`
	if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"-markdown", "-commit", "abc1234", path}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"Run of 2026-12-04 10:38–10:41 UTC, commit abc1234: 0 met, 1 not met, 12 not run.",
		"| empty chain (bench-chain) sustained ÷ pgbench TPC-B | ≥ 0.40 | 0.29 | 1024 / 3538 | **not met** |",
		"| commits per confirmed order (read-only polls included) | ≤ 6.0 | - |  | not run |",
		"pgbench TPC-B (bench-chain) 3538 tps",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// When every benchmark failed before recording anything there is no
// results file: the table still prints, every target not run. A file
// that is not a results file is an error.
func TestRun_WithoutAResultsFileEveryTargetIsNotRun(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{filepath.Join(t.TempDir(), "none.jsonl")}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 met, 0 not met, 13 not run") || !strings.Contains(out.String(), "no figures recorded") {
		t.Errorf("output without a results file:\n%s", out.String())
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{bad}, &out); err == nil {
		t.Error("a results file that does not parse printed a table instead of failing")
	}
}
