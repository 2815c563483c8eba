package chaos

import (
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// How long the load runs before a fault and after the shop recovered;
// after a lasting fault's process is ready, the load runs that long under
// the fault.
const (
	beforeFault  = 10 * time.Second
	afterFault   = 15 * time.Second
	lastingFault = 30 * time.Second
)

// fault is one thing going wrong; inject makes it happen and returns when
// the shop's surroundings are whole again (the database back, the
// process ready, the faulty build settings gone).
type fault struct {
	name   string
	rate   float64 // orders per second
	inject func(t *testing.T) (recovered time.Time)
	// lasting: the fault goes on after inject (the chaos settings of the
	// restarted process), through the load after it and the checks, which
	// must then hold under it; end takes it away afterwards.
	lasting bool
	end     func(t *testing.T)
	// after, when set, checks what only this fault can show.
	after func(t *testing.T, f figures)
}

// figures are what one fault did to the shop, for the report.
type figures struct {
	fault                          string
	recoveryToConfirmed            time.Duration // -1: no order confirmed after recovery
	acceptedBefore, acceptedDuring float64       // orders accepted per second
	acceptedAfter                  float64
	confirmedBefore                float64 // orders confirmed per second
	confirmedDuring                float64
	confirmedAfter                 float64
	retries                        map[string]float64 // the bus's, by kind
	refused                        map[string]int     // the client's refused attempts, by kind
	notConfirmed                   map[string]int     // orders placed that ended otherwise, by status:reason
}

// TestChaos runs the shop's binary under a steady order load through each
// fault of issue 13 in turn, and after each checks that nothing was lost,
// doubled or parked. It prints, per fault, how long the first order took
// to be confirmed after recovery, the order rates and the retries.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos suite takes minutes; it runs without -short (make test, make chaos)")
	}
	t.Parallel()
	db := startDatabase(t)
	bin := buildShop(t, t.TempDir(), "chaos")
	s := newShop(t, bin, db.url)
	s.start(t, nil)

	c := newClient(s.url())
	admin := createAdmin(t, bin, db.url, c)
	customerID, token := createCustomer(t, c, "chaos_customer")
	l := newLoad(c, token, createProducts(t, c, admin, 5))
	chk := &checker{databaseURL: db.url, shop: s, admin: admin, customer: customerID}

	faults := []fault{
		{name: "database restarts 3x", rate: 3, inject: func(t *testing.T) time.Time {
			for i := range 3 {
				if i > 0 {
					time.Sleep(5 * time.Second)
				}
				db.stop(t)
				db.start(t)
			}
			return time.Now()
		}},
		{name: "database down 30s", rate: 3, inject: func(t *testing.T) time.Time {
			db.stop(t)
			time.Sleep(30 * time.Second)
			db.start(t)
			return time.Now()
		}},
		{name: "process SIGKILLed 2x", rate: 3, inject: func(t *testing.T) time.Time {
			for i := range 2 {
				if i > 0 {
					time.Sleep(5 * time.Second)
				}
				s.kill(t)
				s.start(t, nil)
			}
			return time.Now()
		}},
		{name: "handlers fail 10%, panic 2%", rate: 3, lasting: true, inject: func(t *testing.T) time.Time {
			// A tenth of the messages meet a transient fault that lasts
			// one run longer than a permanent failure's attempts (three
			// here): it must wait, not become a dead letter. The panics
			// (2% of runs) are permanent failures; three in a row on
			// one message (8 in a million) would rightly park it.
			s.restart(t, map[string]string{
				"MODSHOP_CHAOS_TRANSIENT":      "0.10",
				"MODSHOP_CHAOS_TRANSIENT_RUNS": "4",
				"MODSHOP_CHAOS_PANIC":          "0.02",
				"MODSHOP_BUS_MAX_ATTEMPTS":     "3",
			})
			return time.Now()
		}, end: func(t *testing.T) { s.restart(t, nil) }, after: func(t *testing.T, f figures) {
			// The hook must have fired, or this fault tested nothing.
			var n float64
			for _, v := range f.retries {
				n += v
			}
			if n == 0 {
				t.Errorf("no handler was retried: the chaos build's fault hook did not fire")
			}
		}},
		{name: "payment.charge slowed to 200ms", rate: 2, lasting: true, inject: func(t *testing.T) time.Time {
			s.restart(t, map[string]string{"MODSHOP_CHAOS_SLOW": "payment.charge=200ms"})
			return time.Now()
		}, end: func(t *testing.T) { s.restart(t, nil) }},
	}

	var report []figures
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			fig := runFault(t, f, s, l, chk)
			report = append(report, fig)
			if f.after != nil {
				f.after(t, fig)
			}
		})
		if !s.running() { // a failed fault may have left it down
			s.start(t, nil)
		}
	}
	t.Log("\n" + formatReport(report))
}

// runFault runs the load before, through and after one fault, stops it,
// checks the shop and returns the figures.
func runFault(t *testing.T, f fault, s *shop, l *load, chk *checker) figures {
	stopLoad := l.run(f.rate)
	var once sync.Once
	stop := func() { once.Do(stopLoad) }
	defer stop()

	retries0 := s.retries()
	_, refused0, _ := l.snapshot()
	start := time.Now()
	time.Sleep(beforeFault)
	faultAt := time.Now()
	t.Logf("%s: fault at %s", f.name, faultAt.Format("15:04:05.000"))
	recovered := f.inject(t)
	if f.end != nil { // after the checks, even failed ones
		t.Cleanup(func() { f.end(t) })
	}
	t.Logf("%s: recovered at %s (%s)", f.name, recovered.Format("15:04:05.000"), recovered.Sub(faultAt).Round(time.Millisecond))
	after := afterFault
	if f.lasting {
		after = lastingFault
	}
	time.Sleep(after)
	end := time.Now()
	stop()
	retries1 := s.retries()
	_, refused1, _ := l.snapshot()

	chk.check(t, l)

	db, err := sql.Open("pgx", chk.databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	perSecond := func(n int, from, to time.Time) float64 { return float64(n) / to.Sub(from).Seconds() }
	fig := figures{
		fault:               f.name,
		recoveryToConfirmed: -1,
		acceptedBefore:      perSecond(l.acceptedBetween(start, faultAt), start, faultAt),
		acceptedDuring:      perSecond(l.acceptedBetween(faultAt, recovered), faultAt, recovered),
		acceptedAfter:       perSecond(l.acceptedBetween(recovered, end), recovered, end),
		confirmedBefore:     perSecond(confirmedBetween(db, start, faultAt), start, faultAt),
		confirmedDuring:     perSecond(confirmedBetween(db, faultAt, recovered), faultAt, recovered),
		confirmedAfter:      perSecond(confirmedBetween(db, recovered, end), recovered, end),
		retries:             map[string]float64{},
		refused:             map[string]int{},
		notConfirmed:        endedBy(db, start),
	}
	if first := firstConfirmedAfter(db, recovered); !first.IsZero() {
		fig.recoveryToConfirmed = first.Sub(recovered)
	}
	for k, v := range retries1 {
		if d := v - retries0[k]; d > 0 {
			fig.retries[k] = d
		}
	}
	for k, v := range refused1 {
		if d := v - refused0[k]; d > 0 {
			fig.refused[k] = d
		}
	}
	t.Logf("%s: %s", f.name, fig.line())
	return fig
}

func (f figures) line() string {
	first := "none"
	if f.recoveryToConfirmed >= 0 {
		first = f.recoveryToConfirmed.Round(time.Millisecond).String()
	}
	return fmt.Sprintf("first confirmed %s after recovery; accepted/s %.1f/%.1f/%.1f; confirmed/s %.1f/%.1f/%.1f (before/during/after); bus retries %s; client refused %s; not confirmed %s",
		first, f.acceptedBefore, f.acceptedDuring, f.acceptedAfter, f.confirmedBefore, f.confirmedDuring, f.confirmedAfter,
		formatCounts(f.retries), formatCounts(f.refused), formatCounts(f.notConfirmed))
}

// formatReport is the figures as a table, one fault a row.
func formatReport(report []figures) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "fault\trecovery→confirmed\taccepted/s before/during/after\tconfirmed/s before/during/after\tbus retries by kind\tclient refused\tnot confirmed")
	for _, f := range report {
		first := "none"
		if f.recoveryToConfirmed >= 0 {
			first = f.recoveryToConfirmed.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%.1f / %.1f / %.1f\t%.1f / %.1f / %.1f\t%s\t%s\t%s\n", f.fault, first,
			f.acceptedBefore, f.acceptedDuring, f.acceptedAfter, f.confirmedBefore, f.confirmedDuring, f.confirmedAfter,
			formatCounts(f.retries), formatCounts(f.refused), formatCounts(f.notConfirmed))
	}
	_ = w.Flush()
	return b.String()
}

func formatCounts[V int | float64](m map[string]V) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}
