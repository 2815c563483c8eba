// Command benchtable prints the table `make bench` ends with: every target
// of issue 17, its figure from the run (read from the results file the
// benchmarks append to with benchkit.Record) and whether it is met.
//
//	go run ./tools/benchtable [-markdown] [-commit abc1234] tmp/bench/results.jsonl
//
// With -markdown it prints the "Where we stand" section of
// docs/benchmarks.md: the table, the run's date, commit and pgbench
// baselines. It exits 0 whether the targets are met or not; without a
// results file every target is "not run"; an unreadable one is an error.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modshop/modshop/platform/benchkit"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	flags := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	markdown := flags.Bool("markdown", false, "print the table as the markdown section of docs/benchmarks.md")
	commit := flags.String("commit", "", "the commit the run measured, for the heading")
	if err := flags.Parse(args); err != nil {
		return err
	}
	path := "tmp/bench/results.jsonl"
	if flags.NArg() > 0 {
		path = flags.Arg(0)
	}
	figs, err := benchkit.ReadFigures(path)
	if errors.Is(err, fs.ErrNotExist) {
		figs = nil // no benchmark recorded anything: every target not run
	} else if err != nil {
		return err
	}
	values := make(map[string]float64, len(figs))
	var first, last time.Time
	for k, f := range figs {
		values[k] = f.Value
		if first.IsZero() || f.At.Before(first) {
			first = f.At
		}
		if f.At.After(last) {
			last = f.At
		}
	}
	rows := Evaluate(Targets, values)
	met, notMet, notRun := Counts(rows)
	when := "no figures recorded"
	if !last.IsZero() {
		when = first.UTC().Format("2006-01-02 15:04") + "–" + last.UTC().Format("15:04") + " UTC"
	}
	if *commit != "" {
		when += ", commit " + *commit
	}
	summary := fmt.Sprintf("%d met, %d not met, %d not run", met, notMet, notRun)
	if *markdown {
		fmt.Fprintf(out, "Run of %s: %s.\n\n", when, summary)
		io.WriteString(out, Markdown(rows))
		if b := baselines(values); b != "" {
			fmt.Fprintf(out, "\nBaselines measured in the same run: %s.\n", b)
		}
		return nil
	}
	fmt.Fprintf(out, "\nissue 17 targets, run of %s (%s)\n", when, path)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\ttarget\tthis run\tfrom\t\t")
	for _, r := range rows {
		from := r.From
		if len(r.Missing) > 0 {
			from = "no " + strings.Join(r.Missing, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", r.Measure, r.Target, r.Figure, from, r.Status)
	}
	tw.Flush()
	if b := baselines(values); b != "" {
		fmt.Fprintf(out, "baselines (same run): %s\n", b)
	}
	fmt.Fprintln(out, summary)
	return nil
}

// baselines lists the pgbench figures the run recorded.
func baselines(values map[string]float64) string {
	var parts []string
	for _, b := range Baselines {
		if v, ok := values[b.Key]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f tps", b.Label, v))
		}
	}
	return strings.Join(parts, "; ")
}
