package apptest

// This file starts a shop in its topologies (split behind a gateway, one
// process, full replicas); process.go supervises each modshop process and
// binary.go builds the binary they run.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// SplitModules are the modules of a split shop, one process each, in
// start order: the shop's list (app.Modules).
var SplitModules = splitModules()

func splitModules() []string {
	var out []string
	for _, m := range app.Modules(app.Config{}) {
		out = append(out, m.Name)
	}
	return out
}

// SplitRoutes sends each path prefix to the process of a module: the
// gateway's routes in a split shop, from each module's definition (Paths).
// The bus's staff routes are in every process; one is enough: the order
// module's, as the split shop has always had it.
var SplitRoutes = splitRoutes()

func splitRoutes() []struct{ Prefix, Module string } {
	var out []struct{ Prefix, Module string }
	for _, m := range app.Modules(app.Config{}) {
		for _, p := range m.Paths {
			out = append(out, struct{ Prefix, Module string }{p, m.Name})
		}
	}
	return append(out, struct{ Prefix, Module string }{"/api/v1/admin", order.Name})
}

// Split is a shop split into processes of the real binary: one
// `modshop serve --modules=<module>` per module, each on its own port, all
// on one fresh database with the PostgreSQL bus, and `modshop gateway` in
// front. Tests reach it through the gateway (URL).
//
// With OneProcess it is the real binary unsplit instead: one `modshop
// serve` running every module, reached directly, so that benchmarks can
// compare the topologies as separate processes alike. With OneProcess and
// Replicas {"all"} it is two such processes on one database, reached
// through a round-robin front (Front), as behind a load balancer.
type Split struct {
	URL string // the gateway, the one process, or the front of the replicas
	// DatabaseURL is a superuser URL of a database where every module's
	// schema can be read: the shop's one database, or with a database per
	// module one that imports their schemas (postgres_fdw).
	DatabaseURL string
	// ModuleDatabases are the modules' own databases (DatabasePerModule).
	ModuleDatabases map[string]string
	// env holds the settings every process of the shop shares.
	env map[string]string

	tb    testing.TB
	bin   string
	names []string            // the module processes in start order: SplitModules and replicas, or allModules
	procs map[string]*process // by name (a module's, allModules or "gateway")
	doc   *openapi3.T
	front *Front // OneProcess with replicas: what URL reaches

	adminOnce             sync.Once
	adminID, adminToken   string
	adminErr              error
	adminUser, adminEmail string
}

// SplitOptions adjusts a split shop.
type SplitOptions struct {
	// Env adds MODSHOP_* settings to every module process, and OTEL_*
	// ones (OpenTelemetry: the exporter's endpoint, the sampler) to every
	// module process and the gateway alike, so that the gateway's spans go
	// where the modules' go.
	Env map[string]string
	// DatabasePerModule gives each module a database of its own; events
	// then travel through RabbitMQ (the rabbitmq transport, at TEST_AMQP_URL
	// or the local broker, under a namespace of this test's own).
	DatabasePerModule bool
	// OneProcess runs every module in one process (--modules=all) on one
	// database, without a gateway: the single binary, started as the split
	// shop is. It cannot be combined with DatabasePerModule.
	OneProcess bool
	// Replicas runs a second process of each module named beside the
	// first, on the module's database, named "<module>-2": the two share
	// the module's bus consumer groups, its background work (payment
	// worker, deadline and expiry sweeps) and its data. The gateway sends
	// HTTP to the first.
	//
	// With OneProcess it may name "all" alone: two full replicas, "all"
	// and "all-2", each `modshop serve` running every module on the one
	// database, as a user would run them behind a load balancer; URL is
	// then a front that sends requests to each in turn (Front).
	Replicas []string
}

// replicaSuffix names a module's second process (SplitOptions.Replicas).
const replicaSuffix = "-2"

// moduleOf is the module a process of the split shop runs.
func moduleOf(name string) string { return strings.TrimSuffix(name, replicaSuffix) }

// allModules names the one process of a OneProcess shop.
const allModules = "all"

// StartSplit builds the binary (once per test binary), starts a process
// per module (SplitModules) at once on a new database and the gateway in front, and
// waits until all are ready. Everything stops when the test ends; the
// processes' logs are shown if it failed.
func StartSplit(tb testing.TB, opts SplitOptions) *Split {
	tb.Helper()
	if opts.OneProcess && (opts.DatabasePerModule || (len(opts.Replicas) > 0 && !slices.Equal(opts.Replicas, []string{allModules}))) {
		tb.Fatal(`StartSplit: OneProcess runs every module on one database: not with DatabasePerModule, and its only replica is "all"`)
	}
	s := &Split{tb: tb, bin: splitBinary(tb), names: SplitModules, procs: map[string]*process{}, ModuleDatabases: map[string]string{}}
	if opts.OneProcess {
		s.names = []string{allModules}
	}
	for _, m := range opts.Replicas {
		if !slices.Contains(SplitModules, m) && !opts.OneProcess {
			tb.Fatalf("StartSplit: no module %q to replicate", m)
		}
		s.names = append(s.names, m+replicaSuffix)
	}
	s.env = map[string]string{}
	if opts.DatabasePerModule {
		for _, m := range SplitModules {
			s.ModuleDatabases[m] = testkit.NewDatabase(tb)
		}
		amqpURL := os.Getenv("TEST_AMQP_URL")
		if amqpURL == "" {
			amqpURL = "amqp://guest:guest@127.0.0.1:5672/" // #nosec G101 -- RabbitMQ's default local account, as the tests' broker has it: no secret
		}
		s.env["MODSHOP_BUS_TRANSPORT"] = "rabbitmq"
		s.env["MODSHOP_AMQP_URL"] = amqpURL
		s.env["MODSHOP_AMQP_NAMESPACE"] = Unique("split") + "."
		ns := s.env["MODSHOP_AMQP_NAMESPACE"]
		tb.Cleanup(func() { testkit.DeleteAMQPNamespace(amqpURL, ns) })
	} else {
		shared := testkit.NewDatabase(tb)
		for _, m := range SplitModules {
			s.ModuleDatabases[m] = shared
		}
		s.DatabaseURL = shared
	}
	logs := tb.TempDir()
	tb.Cleanup(s.stop)

	addrs := map[string]string{}
	for _, m := range s.names {
		addrs[m] = freeLoopbackAddr(tb)
	}
	level := "warn"
	if os.Getenv("MODSHOP_TEST_LOG") != "" {
		level = "debug"
	}
	for _, m := range s.names {
		env := map[string]string{
			"MODSHOP_DATABASE_URL":     s.DatabaseURL,
			"MODSHOP_MODULES":          moduleOf(m),
			"MODSHOP_HTTP_ADDR":        addrs[m],
			"MODSHOP_TRUSTED_PROXIES":  "127.0.0.1",
			"MODSHOP_LOG_LEVEL":        level,
			"MODSHOP_DB_MAX_CONNS":     "2",
			"MODSHOP_SHUTDOWN_TIMEOUT": "5s",
		}
		if moduleOf(m) != allModules { // sessions are checked with the user module's process
			env["MODSHOP_DATABASE_URL"] = s.ModuleDatabases[moduleOf(m)]
			env["MODSHOP_USER_URL"] = "http://" + addrs[user.Name]
		}
		for k, v := range s.env {
			env[k] = v
		}
		for k, v := range opts.Env {
			env[k] = v
		}
		s.procs[m] = &process{name: m, addr: addrs[m], args: []string{"serve"}, env: processEnv(env), log: filepath.Join(logs, m+".log")}
	}
	// All at once, as an orchestrator would start them: provisioning and
	// migrations must cope with each other.
	for _, m := range s.names {
		if err := s.procs[m].start(s.bin); err != nil {
			tb.Fatalf("start the %s process: %v", m, err)
		}
	}
	for _, m := range s.names {
		if err := s.procs[m].waitReady(); err != nil {
			tb.Fatalf("the %s process: %v", m, err)
		}
	}
	if opts.OneProcess && len(opts.Replicas) > 0 {
		s.front = startFront(tb, s.names, addrs)
		s.URL = s.front.URL
		s.doc = s.fetchDoc()
		return s
	}
	if opts.OneProcess {
		s.URL = "http://" + addrs[allModules]
		s.doc = s.fetchDoc()
		return s
	}

	gwEnv := map[string]string{"MODSHOP_LOG_LEVEL": level}
	for k, v := range opts.Env { // the gateway traces as the module processes do
		if strings.HasPrefix(k, "OTEL_") {
			gwEnv[k] = v
		}
	}
	gw := &process{name: "gateway", addr: freeLoopbackAddr(tb), log: filepath.Join(logs, "gateway.log"),
		env: processEnv(gwEnv)}
	gw.args = []string{"gateway", "--listen", gw.addr}
	for _, r := range SplitRoutes {
		gw.args = append(gw.args, "--route", r.Prefix+"=http://"+addrs[r.Module])
	}
	s.procs["gateway"] = gw
	if err := gw.start(s.bin); err != nil {
		tb.Fatalf("start the gateway: %v", err)
	}
	if err := gw.waitReady(); err != nil {
		tb.Fatalf("the gateway: %v", err)
	}
	s.URL = "http://" + gw.addr
	s.doc = s.fetchDoc()
	if opts.DatabasePerModule { // every process is ready: every schema is migrated
		s.DatabaseURL = mergedDatabase(tb, s.ModuleDatabases)
	}
	return s
}

// mergedDatabase makes a new database that shows each module's schema from
// that module's own database (postgres_fdw, IMPORT FOREIGN SCHEMA), so
// that the invariants can be checked across the modules with one query each.
func mergedDatabase(tb testing.TB, modules map[string]string) string {
	tb.Helper()
	url := testkit.NewDatabase(tb)
	db, err := sql.Open("pgx", url)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("merge the module databases: %s: %v", q, err)
		}
	}
	exec(`CREATE EXTENSION IF NOT EXISTS postgres_fdw`)
	for _, m := range SplitModules {
		cfg, err := pgx.ParseConfig(modules[m])
		if err != nil {
			tb.Fatal(err)
		}
		server := pgx.Identifier{"module_" + m}.Sanitize()
		schema := pgx.Identifier{moduleSchema[m]}.Sanitize()
		exec(fmt.Sprintf(`CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %s, port %s, dbname %s)`,
			server, quote(cfg.Host), quote(fmt.Sprint(cfg.Port)), quote(cfg.Database)))
		mapping := fmt.Sprintf(`CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (user %s`, server, quote(cfg.User))
		if cfg.Password != "" {
			mapping += `, password ` + quote(cfg.Password)
		}
		exec(mapping + `)`)
		exec(`CREATE SCHEMA ` + schema)
		exec(fmt.Sprintf(`IMPORT FOREIGN SCHEMA %s FROM SERVER %s INTO %s`, schema, server, schema))
	}
	return url
}

// moduleSchema is each module's schema, by name.
var moduleSchema = func() map[string]string {
	out := map[string]string{}
	for _, m := range app.Modules(app.Config{}) {
		out[m.Name] = m.Schema
	}
	return out
}()

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Front is the front of two full replicas (nil otherwise): it counts the
// requests each served.
func (s *Split) Front() *Front { return s.front }

// Client is an API client for tb that talks to the gateway.
func (s *Split) Client(tb testing.TB) *testkit.API { return testkit.NewAPI(tb, s.URL, s.doc) }

// ProcessClient is an API client for tb that talks to one process
// directly (a module's, or a replica's: "all", "all-2"), past the gateway
// or the front.
func (s *Split) ProcessClient(tb testing.TB, name string) *testkit.API {
	return testkit.NewAPI(tb, s.ProcessURL(name), s.doc)
}

// ProcessURL is the base URL of the process that runs a module.
func (s *Split) ProcessURL(module string) string { return "http://" + s.process(module).addr }

// Processes names the shop's module processes in start order: the
// modules and their replicas ("product-2"), or with OneProcess "all" (and
// "all-2"). Kill, Stop and Restart take these names, or a module's name
// for the process that runs it.
func (s *Split) Processes() []string { return slices.Clone(s.names) }

// process is the process named name, or the one that runs module name.
func (s *Split) process(name string) *process {
	if p, ok := s.procs[name]; ok {
		return p
	}
	return s.procs[allModules]
}

// Admin returns the split shop's admin, created on first use with
// `modshop users create --admin` as an operator would.
func (s *Split) Admin(tb testing.TB) (id, token string) {
	tb.Helper()
	s.adminOnce.Do(func() {
		s.adminUser = Unique("admin")
		s.adminEmail = s.adminUser + "@example.com"
		const password = "correct horse battery"
		// #nosec G204 -- the modshop binary this harness built, with arguments it chose
		cmd := exec.Command(s.bin, "users", "create", "--admin", "--username", s.adminUser, "--email", s.adminEmail)
		env := map[string]string{"MODSHOP_DATABASE_URL": s.ModuleDatabases[user.Name], "MODSHOP_LOG_LEVEL": "error"}
		for k, v := range s.env {
			env[k] = v
		}
		cmd.Env = processEnv(env)
		cmd.Stdin = strings.NewReader(password + "\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			s.adminErr = fmt.Errorf("modshop users create: %v: %s", err, out)
			return
		}
		s.adminToken, s.adminID, s.adminErr = s.loginPlain(s.adminUser, password)
	})
	if s.adminErr != nil {
		tb.Fatal(s.adminErr)
	}
	return s.adminID, s.adminToken
}

// Customer registers a new customer through the gateway and logs in.
func (s *Split) Customer(tb testing.TB) (id, token string) {
	tb.Helper()
	name := Unique("cust")
	const password = "correct horse battery"
	r := s.Client(tb).Do("POST", "/api/v1/users", map[string]string{"username": name, "email": name + "@example.com", "password": password})
	if r.Status != http.StatusCreated {
		tb.Fatalf("register %s: %d %s", name, r.Status, r.Body)
	}
	token, id = s.login(tb, name, password)
	return id, token
}

func (s *Split) login(tb testing.TB, login, password string) (token, userID string) {
	tb.Helper()
	r := s.Client(tb).Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
	if r.Status != http.StatusCreated {
		tb.Fatalf("log in %s: %d %s", login, r.Status, r.Body)
	}
	var out struct {
		Token string
		User  struct{ ID string }
	}
	r.Decode(tb, &out)
	return out.Token, out.User.ID
}

// loginPlain logs in without a test to fail: for what runs once for all.
func (s *Split) loginPlain(login, password string) (token, userID string, err error) {
	body, _ := json.Marshal(map[string]string{"login": login, "password": password})
	resp, err := http.Post(s.URL+"/api/v1/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	var out struct {
		Token string
		User  struct{ ID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("log in %s: %d %v", login, resp.StatusCode, err)
	}
	return out.Token, out.User.ID, nil
}

// CheckInvariants waits until the split shop has settled and checks the
// invariants, with every handler's lag asked of the process it runs in.
func (s *Split) CheckInvariants(tb testing.TB) {
	tb.Helper()
	s.Admin(tb)
	CheckInvariantsAt(tb, s.DatabaseURL, s.overview)
}

// overview merges what each module process reports about the bus: each
// knows every topic but only its own handlers.
func (s *Split) overview(ctx context.Context) ([]bus.TopicStats, error) {
	byTopic := map[string]*bus.TopicStats{}
	for _, m := range s.names {
		if s.procs[m].down() {
			continue // killed or stopped by the test: its replica tells
		}
		req, err := http.NewRequestWithContext(ctx, "GET", s.ProcessURL(m)+"/api/v1/admin/bus", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+s.adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("bus overview of the %s process: %w", m, err)
		}
		var out struct{ Topics []bus.TopicStats }
		err = json.NewDecoder(resp.Body).Decode(&out)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			return nil, fmt.Errorf("bus overview of the %s process: %d %v", m, resp.StatusCode, err)
		}
		for _, t := range out.Topics {
			have, ok := byTopic[t.Topic]
			if !ok {
				t := t
				byTopic[t.Topic] = &t
				continue
			}
			have.Published = max(have.Published, t.Published)
			have.Consumers = append(have.Consumers, t.Consumers...)
		}
	}
	out := make([]bus.TopicStats, 0, len(byTopic))
	for _, t := range byTopic {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out, nil
}

// Kill ends a module's process with SIGKILL, as a crash would: no
// shutdown, transactions in flight cut off.
func (s *Split) Kill(tb testing.TB, module string) {
	tb.Helper()
	if err := s.process(module).kill(); err != nil {
		tb.Fatalf("kill the %s process: %v", module, err)
	}
}

// Stop ends a module's process as an orchestrator would: SIGTERM, and a
// clean shutdown within 30s. Restart starts it again.
func (s *Split) Stop(tb testing.TB, module string) {
	tb.Helper()
	p := s.process(module)
	if err := p.stop(); err != nil {
		tb.Fatalf("stop the %s process: %v", module, err)
	}
	p.mu.Lock()
	p.expected = true
	p.mu.Unlock()
}

// Restart starts a killed or stopped module's process again, on the same
// port, and waits until it is ready.
func (s *Split) Restart(tb testing.TB, module string) {
	tb.Helper()
	p := s.process(module)
	if err := p.start(s.bin); err != nil {
		tb.Fatalf("restart the %s process: %v", module, err)
	}
	if err := p.waitReady(); err != nil {
		tb.Fatalf("the restarted %s process: %v", module, err)
	}
}

func (s *Split) fetchDoc() *openapi3.T {
	s.tb.Helper()
	resp, err := http.Get(s.URL + "/api/openapi.json")
	if err != nil {
		s.tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.tb.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		s.tb.Fatalf("the gateway's OpenAPI document: %v", err)
	}
	return doc
}

// stop ends every process (the gateway first), then fails the test if one
// died unasked or its race detector spoke, and shows the logs of a failed
// test.
func (s *Split) stop() {
	names := append([]string{"gateway"}, s.names...)
	for _, n := range names {
		p, ok := s.procs[n]
		if !ok {
			continue
		}
		if err := p.stop(); err != nil {
			s.tb.Errorf("the %s process: %v", n, err)
		}
		if races := p.races(); races != "" {
			s.tb.Errorf("the race detector spoke in the %s process:\n%s", n, races)
		}
	}
	if s.tb.Failed() {
		for _, n := range names {
			if p, ok := s.procs[n]; ok {
				s.tb.Logf("--- last lines of the %s process's log:\n%s", n, p.tail(60))
			}
		}
	}
}
