package main

import (
	"fmt"
	"strconv"
	"strings"
)

// A Target is one line of issue 17's table of targets: a figure of the run
// (one recorded key, or the ratio of two) compared with a limit.
type Target struct {
	Measure string
	// Num is the key of the figure; with Den, the figure is Num ÷ Den
	// (each benchmark records its own baseline, so a ratio's two keys
	// come from the same run of the same benchmark, or are two
	// benchmarks' figures of the same run).
	Num, Den string
	// NumRef and DenRef, when set, are the pgbench baselines Num and Den
	// were each measured beside: the figure is then (Num ÷ NumRef) ÷
	// (Den ÷ DenRef), two figures of two benchmarks compared as ratios
	// to their own baselines, so that the machine's drift between the
	// two does not count.
	NumRef, DenRef string
	Cmp            Cmp
	Limit          float64
	Unit           string // after the figure and the limit: "ms", "" for a ratio
	Decimals       int
}

// Cmp is how a figure must compare with its target's limit.
type Cmp string

const (
	AtLeast Cmp = "≥"
	AtMost  Cmp = "≤"
	Below   Cmp = "<"
)

// Status says whether a target was met in the run.
type Status string

const (
	Met    Status = "met"
	NotMet Status = "NOT MET"
	NotRun Status = "not run"
)

// Row is a target with its figure from the run.
type Row struct {
	Measure, Target string
	Figure          string // "0.31", "12.5 ms"; "-" when not run
	From            string // how the figure was computed: "212.3 / 1024"
	Status          Status
	Missing         []string // keys not in the run
}

// Targets are issue 17's targets, in its order. Keys are those of
// common.md's list, recorded by the benchmarks with benchkit.Record.
var Targets = []Target{
	{Measure: "real saga sustained confirmed/s ÷ empty-chain sustained chains/s (each ÷ its own TPC-B)", Num: "orders.sustained_confirmed_per_s", NumRef: "orders.tpcb_tps",
		Den: "chain.sustained_per_s", DenRef: "chain.tpcb_tps", Cmp: AtLeast, Limit: 0.5, Decimals: 2},
	{Measure: "empty chain (bench-chain) sustained ÷ pgbench TPC-B", Num: "chain.sustained_per_s", Den: "chain.tpcb_tps", Cmp: AtLeast, Limit: 0.4, Decimals: 2},
	{Measure: "machine CPU per confirmed order ÷ CPU per empty chain", Num: "orders.cpu_ms_per_order", Den: "chain.cpu_ms_per_chain", Cmp: AtMost, Limit: 2, Decimals: 1},
	{Measure: "SQL statements per confirmed order (FK checks included)", Num: "orders.statements_per_order", Cmp: AtMost, Limit: 45, Decimals: 0},
	{Measure: "commits per confirmed order (read-only polls included)", Num: "orders.commits_per_order", Cmp: AtMost, Limit: 6, Decimals: 1},
	{Measure: "placed → confirmed p50 at 10 orders/s", Num: "orders.p50_ms_at_10_per_s", Cmp: Below, Limit: 25, Unit: "ms", Decimals: 0},
	{Measure: "placed → confirmed p99 at half capacity", Num: "orders.p99_ms_at_half", Cmp: Below, Limit: 150, Unit: "ms", Decimals: 0},
	{Measure: "GET /products/{id} ÷ pgbench select-only", Num: "products.get_by_id_per_s", Den: "products.select_only_tps", Cmp: AtLeast, Limit: 0.3, Decimals: 2},
	{Measure: "bus: idle hop p50", Num: "bus.idle_hop_p50_ms", Cmp: AtMost, Limit: 2, Unit: "ms", Decimals: 1},
	{Measure: "bus: sustained ÷ pgbench TPC-B", Num: "bus.sustained_per_s", Den: "bus.tpcb_tps", Cmp: AtLeast, Limit: 0.8, Decimals: 2},
	{Measure: "search page 1 p99, 1,000,000 products", Num: "catalog.search_p1_p99_ms", Cmp: Below, Limit: 50, Unit: "ms", Decimals: 0},
	{Measure: "search page 30 p99, 1,000,000 products", Num: "catalog.search_p30_p99_ms", Cmp: Below, Limit: 50, Unit: "ms", Decimals: 0},
	{Measure: "category page p99, 1,000,000 products", Num: "catalog.category_p99_ms", Cmp: Below, Limit: 20, Unit: "ms", Decimals: 0},
}

// Baselines are the pgbench figures each benchmark measured beside its
// own, printed under the table: the ratios above are to these.
var Baselines = []struct{ Key, Label string }{
	{"chain.tpcb_tps", "pgbench TPC-B (bench-chain)"},
	{"orders.tpcb_tps", "pgbench TPC-B (bench-orders)"},
	{"bus.tpcb_tps", "pgbench TPC-B (bench-bus)"},
	{"products.select_only_tps", "pgbench select-only (bench-products)"},
	{"catalog.select_only_tps", "pgbench select-only (bench-catalog)"},
}

// Evaluate is each target's row for the figures of one run (key → value).
// A target whose keys were not all recorded is "not run", as is a ratio
// whose denominator is not positive.
func Evaluate(targets []Target, figures map[string]float64) []Row {
	rows := make([]Row, 0, len(targets))
	for _, t := range targets {
		rows = append(rows, t.evaluate(figures))
	}
	return rows
}

func (t Target) evaluate(figures map[string]float64) Row {
	r := Row{Measure: t.Measure, Target: t.Cmp.String() + " " + t.format(t.Limit), Figure: "-", Status: NotRun}
	get := func(key string) float64 {
		if key == "" {
			return 1
		}
		v, ok := figures[key]
		if !ok {
			r.Missing = append(r.Missing, key)
		}
		return v
	}
	num, numRef, den, denRef := get(t.Num), get(t.NumRef), get(t.Den), get(t.DenRef)
	if len(r.Missing) > 0 {
		return r
	}
	for _, d := range []struct {
		key string
		v   float64
	}{{t.NumRef, numRef}, {t.Den, den}, {t.DenRef, denRef}} {
		if d.v <= 0 {
			r.From = d.key + " = " + strconv.FormatFloat(d.v, 'g', -1, 64)
			return r
		}
	}
	v := (num / numRef) / (den / denRef)
	r.Figure = t.format(v)
	switch {
	case t.NumRef != "" || t.DenRef != "":
		r.From = fmt.Sprintf("(%s / %s) / (%s / %s)", short(num), short(numRef), short(den), short(denRef))
	case t.Den != "":
		r.From = fmt.Sprintf("%s / %s", short(num), short(den))
	}
	r.Status = NotMet
	if t.Cmp.holds(v, t.Limit) {
		r.Status = Met
	}
	return r
}

// format is v with the target's decimals and unit.
func (t Target) format(v float64) string {
	s := strconv.FormatFloat(v, 'f', t.Decimals, 64)
	if t.Unit != "" {
		s += " " + t.Unit
	}
	return s
}

func (c Cmp) String() string { return string(c) }

// holds compares the unrounded figure v with limit: 0.398 is printed as
// 0.40 and does not meet "≥ 0.4".
func (c Cmp) holds(v, limit float64) bool {
	switch c {
	case AtLeast:
		return v >= limit
	case AtMost:
		return v <= limit
	case Below:
		return v < limit
	}
	return false
}

// short is a figure with as many digits as its size deserves.
func short(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// Counts are how many rows are met, not met and not run.
func Counts(rows []Row) (met, notMet, notRun int) {
	for _, r := range rows {
		switch r.Status {
		case Met:
			met++
		case NotMet:
			notMet++
		default:
			notRun++
		}
	}
	return met, notMet, notRun
}

// Markdown is the rows as a markdown table.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| measure | target | this run | from | |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		status := string(r.Status)
		switch r.Status {
		case Met:
			status = "**met**"
		case NotMet:
			status = "**not met**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", r.Measure, r.Target, r.Figure, r.From, status)
	}
	return b.String()
}
