package app_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
	orderevents "github.com/modshop/modshop/modules/order/events"
	"github.com/modshop/modshop/platform/testkit"
)

// What docs/observability/ ships for operators: a Grafana dashboard and
// Prometheus alert rules over the shop's metrics.
const (
	dashboardFile  = "../docs/observability/grafana-dashboard.json"
	alertsFile     = "../docs/observability/alerts.yml"
	alertTestsFile = "../docs/observability/alerts_test.yml"
)

// promtool finds Prometheus's promtool (Debian's prometheus package;
// scripts/ensure-promtool installs it), or skips the test when
// MODSHOP_SKIP_PROMTOOL=1 says to.
func promtool(t *testing.T) string {
	t.Helper()
	if os.Getenv("MODSHOP_SKIP_PROMTOOL") == "1" {
		t.Skip("MODSHOP_SKIP_PROMTOOL=1")
	}
	if p := os.Getenv("MODSHOP_PROMTOOL"); p != "" {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("no promtool: run scripts/ensure-promtool (apt-get install --no-install-recommends prometheus), or set MODSHOP_SKIP_PROMTOOL=1")
	}
	return p
}

func runPromtool(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestObservability_AlertRulesPassPromtool: the alert rules are valid
// Prometheus rules and their unit tests (alerts_test.yml: each alert fires
// when it should and stays quiet when it should not) pass.
func TestObservability_AlertRulesPassPromtool(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	runPromtool(t, bin, "check", "rules", alertsFile)
	runPromtool(t, bin, "test", "rules", alertTestsFile)
}

// TestObservability_DashboardQueriesParse: every query of the dashboard is
// valid PromQL (promtool checks them as recording rules, with Grafana's
// variables given values).
func TestObservability_DashboardQueriesParse(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	queries := dashboardQueries(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$job", ".*", "$handler", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		if strings.HasPrefix(q.expr, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: vars.Replace(q.expr)})
	}
	if len(rules) < 10 {
		t.Fatalf("the dashboard has %d queries; it lost its panels?", len(rules))
	}
	doc, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, bin, "check", "rules", path)
}

// TestObservability_EveryQueriedMetricIsExported: every modshop_* metric
// that the dashboard and the alert rules query is one the shop (or its
// gateway) exports. The shop runs one order to confirmed, one message that
// fails until it is a dead letter and one message delivered twice, so that
// the metrics born with their first event are there too.
func TestObservability_EveryQueriedMetricIsExported(t *testing.T) {
	t.Parallel()
	queried := map[string][]string{} // metric -> where it is queried
	for _, q := range dashboardQueries(t) {
		for _, m := range shopMetrics(q.expr) {
			queried[m] = append(queried[m], "dashboard: "+q.where)
		}
	}
	for _, r := range alertRules(t) {
		for _, m := range shopMetrics(r.Expr) {
			queried[m] = append(queried[m], "alert "+r.Alert)
		}
	}
	for _, must := range []string{
		"modshop_http_requests_total", "modshop_http_request_duration_seconds_bucket",
		"modshop_order_saga_stage_seconds_bucket", "modshop_bus_lag_messages", "modshop_bus_dead_letters_open",
		"modshop_bus_handler_duration_seconds_bucket", "modshop_bus_messages_processed_total",
		"modshop_bus_messages_retried_total", "modshop_bus_messages_dead_lettered_total", "modshop_bus_messages_duplicate_total",
	} {
		if _, ok := queried[must]; !ok {
			t.Errorf("neither the dashboard nor the alert rules query %s", must)
		}
	}

	shop := apptest.Start(t, func(c *app.Config) { c.BusMaxAttempts = 2 })
	w := sagasuite.NewWorld(t, shop, map[string]int{"LAMP": 5})
	r, o := w.Place(t, w.Customer, "pm_card_visa", map[string]int{"LAMP": 1})
	if r.Status != http.StatusAccepted {
		t.Fatalf("place: %d %s", r.Status, r.Body)
	}
	w.WaitStatus(t, o.ID, "confirmed")
	deliverAgain(t, shop.DatabaseURL, o.ID)
	deadLetter(t, shop, w)

	gw := startGateway(t, "--route", "/="+shop.URL)
	if resp, _ := do(t, "GET", gw+"/api/v1/products", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/products through the gateway: %d", resp.StatusCode)
	}

	exported := map[string]string{} // family -> type
	for _, base := range []string{shop.URL, gw} {
		for name, typ := range metricFamilies(t, base+"/metrics") {
			exported[name] = typ
		}
	}
	// The duplicate and the dead letter are counted once the handler has
	// seen them: wait for their counters, then check everything.
	deadline := time.Now().Add(60 * time.Second)
	for _, name := range []string{"modshop_bus_messages_duplicate_total", "modshop_bus_messages_dead_lettered_total"} {
		for exported[name] == "" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			for n, typ := range metricFamilies(t, shop.URL+"/metrics") {
				exported[n] = typ
			}
		}
	}

	names := make([]string, 0, len(queried))
	for m := range queried {
		names = append(names, m)
	}
	slices.Sort(names)
	for _, m := range names {
		if !isExported(exported, m) {
			t.Errorf("%s is queried (%s) but the shop does not export it", m, strings.Join(slices.Compact(queried[m]), "; "))
		}
	}
}

// isExported: name is a family of the scrape, or a histogram's (or
// summary's) _bucket, _sum or _count series.
func isExported(families map[string]string, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		switch families[base] {
		case "histogram":
			return true
		case "summary":
			return suffix != "_bucket"
		}
	}
	return false
}

// metricFamilies reads the # TYPE lines of a Prometheus text exposition.
func metricFamilies(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// shopMetricName is a metric name of the shop's in a PromQL expression.
var shopMetricName = regexp.MustCompile(`\bmodshop_[a-zA-Z0-9_:]*`)

func shopMetrics(expr string) []string {
	return slices.Compact(slices.Sorted(slices.Values(shopMetricName.FindAllString(expr, -1))))
}

type dashboardQuery struct{ where, expr string }

// dashboardQueries are the PromQL expressions of every panel target and
// of every templating query of the dashboard.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr string `json:"expr"`
	}
	type panel struct {
		Title   string   `json:"title"`
		Targets []target `json:"targets"`
		Panels  []panel  `json:"panels"` // a collapsed row's
	}
	var d struct {
		Title      string  `json:"title"`
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Fatalf("%s: a dashboard needs a title and a uid", dashboardFile)
	}
	var out []dashboardQuery
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr != "" {
					out = append(out, dashboardQuery{where: "panel " + p.Title, expr: tg.Expr})
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q.Query); err != nil { // a plain string, or
			if err := json.Unmarshal(v.Query, &q); err != nil { // {"query": ...}
				t.Fatalf("variable %s: query %s", v.Name, v.Query)
			}
		}
		out = append(out, dashboardQuery{where: "variable " + v.Name, expr: q.Query})
	}
	return out
}

type alertRule struct {
	Alert  string `yaml:"alert"`
	Record string `yaml:"record"`
	Expr   string `yaml:"expr"`
}

// alertRules are the rules of alerts.yml.
func alertRules(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				r.Alert = r.Record
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		t.Fatalf("%s has no rules", alertsFile)
	}
	return out
}

// deliverAgain writes the order's order.placed message to its topic once
// more, under its own message id, as a redelivery would: the stock
// handler finds it applied and counts a duplicate.
func deliverAgain(t *testing.T, databaseURL, orderID string) {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'bus' AND table_name LIKE 'm\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		q := fmt.Sprintf(`INSERT INTO bus.%[1]s (uuid, payload, metadata, transaction_id)
			SELECT uuid, payload, metadata, pg_current_xact_id() FROM bus.%[1]s
			 WHERE payload::jsonb->>'order_id' = $1 AND metadata::jsonb->>'event' = $2`, `"`+table+`"`)
		res, err := db.ExecContext(ctx, q, orderID, orderevents.OrderPlacedV1)
		if err != nil {
			t.Fatalf("deliver order.placed again (%s): %v", table, err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return
		}
	}
	t.Fatalf("no %s message of order %s in the bus tables %v", orderevents.OrderPlacedV1, orderID, tables)
}

// deadLetter publishes an order.placed the stock handler fails on every
// time (an order id that is no UUID): retried, then parked as a dead
// letter, which staff then discard.
func deadLetter(t *testing.T, shop *apptest.Shop, w *sagasuite.World) {
	t.Helper()
	ev := orderevents.OrderPlaced{OrderID: "not-an-order", UserID: "00000000-0000-7000-8000-000000000001", PlacedAt: time.Now().UTC(),
		Lines: []orderevents.OrderLine{{ProductID: w.Products["LAMP"], Quantity: 1}}}
	if err := shop.Publish(context.Background(), ev); err != nil {
		t.Fatalf("publish: %v", err)
	}
	type letter struct {
		ID      json.Number `json:"id"`
		Handler string      `json:"handler"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list struct {
			Items []letter `json:"items"`
		}
		w.API.Do("GET", "/api/v1/admin/dead-letters", nil, testkit.Bearer(w.Admin)).Decode(t, &list)
		if len(list.Items) > 0 {
			for _, d := range list.Items {
				if r := w.API.Do("DELETE", "/api/v1/admin/dead-letters/"+d.ID.String(), nil, testkit.Bearer(w.Admin)); r.Status >= 300 {
					t.Fatalf("discard dead letter %s: %d %s", d.ID, r.Status, r.Body)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing order.placed did not become a dead letter within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
