package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/pgembed"
)

// database is the suite's own PostgreSQL: an embedded one in a temporary
// directory on a free port, which the suite stops and starts at will (a
// shared test server could not be stopped under the other packages' tests).
type database struct {
	cfg pgembed.Config
	srv *pgembed.Server
	url string
}

func startDatabase(t *testing.T) *database {
	t.Helper()
	// Not t.TempDir: as root the server runs as postgres, which must be
	// able to reach the directory.
	dir, err := os.MkdirTemp("", "modshop-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- holds a throwaway test cluster
		t.Fatal(err)
	}
	d := &database{cfg: pgembed.Config{Dir: filepath.Join(dir, "pg"), Port: uint32(freePort(t)), Database: "modshop"}}
	d.start(t)
	d.url = d.srv.URL()
	t.Cleanup(func() {
		if d.srv != nil {
			_ = d.srv.Stop(context.Background())
		}
	})
	return d
}

// start starts the server on the same directory and port (the data and
// the password survive: the URL stays the same).
func (d *database) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgembed.Start(ctx, d.cfg)
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	d.srv = srv
}

// stop shuts the server down as an operator's restart does (pg_ctl stop
// -m fast: sessions are cut off, nothing committed is lost).
func (d *database) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := d.srv.Stop(ctx); err != nil {
		t.Fatalf("stop PostgreSQL: %v", err)
	}
	d.srv = nil
}

// buildShop builds modshop with the given build tags (and the race
// detector when the suite runs with it) into dir, from the module's root.
func buildShop(t *testing.T, dir string, tags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "modshop")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// moduleRoot is the repository's root: go test runs in app/chaos.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return root
}

// shop is one `modshop serve` process running every module, restarted on
// the same address and database as often as the suite likes.
type shop struct {
	bin  string
	addr string
	log  string
	env  map[string]string // the settings of every run

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	// retried carries the bus's retry counters of the runs that have
	// ended (a new process starts them at zero), by kind.
	retried map[string]float64
}

func newShop(t *testing.T, bin, databaseURL string) *shop {
	t.Helper()
	// MODSHOP_CHAOS_LOG keeps the shop's log (every run) where it says,
	// to read what an operator would see; otherwise it goes with the test.
	logPath := os.Getenv("MODSHOP_CHAOS_LOG")
	if logPath == "" {
		logPath = filepath.Join(t.TempDir(), "modshop.log")
	}
	s := &shop{
		bin:     bin,
		addr:    fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		log:     logPath,
		retried: map[string]float64{},
		env: map[string]string{
			"MODSHOP_DATABASE_URL":     databaseURL,
			"MODSHOP_LOG_LEVEL":        "info",
			"MODSHOP_SHUTDOWN_TIMEOUT": "5s",
			// The saga's deadlines, shortened so that an order held up by
			// a fault ends within the suite (it may end cancelled: what
			// matters is that it ends, and consistently).
			"MODSHOP_STOCK_TIMEOUT":      "10s",
			"MODSHOP_PAYMENT_TIMEOUT":    "20s",
			"MODSHOP_RESERVATION_TTL":    "30s",
			"MODSHOP_PAYMENT_TEST_DELAY": "300ms",
		},
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the shop: %v", err)
		}
		if races := s.races(); races != "" {
			t.Errorf("the race detector spoke in the shop:\n%s", races)
		}
		if t.Failed() {
			t.Logf("--- last lines of the shop's log:\n%s", s.tail(80))
		}
	})
	return s
}

// start starts a run with extra settings (the chaos ones) and waits until
// it is ready.
func (s *shop) start(t *testing.T, extra map[string]string) {
	t.Helper()
	s.mu.Lock()
	logf, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.mu.Unlock()
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "=== %s: modshop serve %v\n", time.Now().Format(time.RFC3339Nano), extra)
	cmd := exec.Command(s.bin, "serve") // #nosec G204 -- the binary this suite built
	env := []string{"MODSHOP_HTTP_ADDR=" + s.addr}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	for k, v := range extra {
		env = append(env, k+"="+v)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The shop dies with the suite, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		s.mu.Unlock()
		t.Fatalf("start the shop: %v", err)
	}
	exited := make(chan struct{})
	s.cmd, s.exited = cmd, exited
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(exited)
	}()
	s.mu.Unlock()
	if err := s.waitReady(exited); err != nil {
		t.Fatalf("the shop: %v", err)
	}
}

// waitReady waits until /readyz answers 200 (it does once the database
// answers and the modules run).
func (s *shop) waitReady(exited chan struct{}) error {
	deadline := time.Now().Add(3 * time.Minute)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready:\n%s", s.tail(30))
		default:
		}
		if resp, err := client.Get(s.url() + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within 3 minutes:\n%s", s.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *shop) url() string { return "http://" + s.addr }

// running reports whether the current run is alive.
func (s *shop) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// kill ends the run with SIGKILL, as a crash or the OOM killer would.
func (s *shop) kill(t *testing.T) {
	t.Helper()
	s.carryRetries()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill the shop: %v", err)
	}
	<-exited
}

// stop ends the run as an orchestrator would: SIGTERM, and a clean exit
// within 30s. A run that had died on its own is an error.
func (s *shop) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil // killed on purpose, or reported by the checks
	default:
	}
	s.carryRetries()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("did not stop within 30s of SIGTERM")
	}
	if !cmd.ProcessState.Success() {
		return fmt.Errorf("stopped with %v", cmd.ProcessState)
	}
	return nil
}

// restart stops the run cleanly and starts one with the extra settings.
func (s *shop) restart(t *testing.T, extra map[string]string) {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("stop the shop: %v", err)
	}
	s.start(t, extra)
}

// carryRetries keeps the retry counters of a run about to end.
func (s *shop) carryRetries() {
	now, err := s.scrapeRetries()
	if err != nil {
		return // the figures are a report; a lost scrape only lowers them
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range now {
		s.retried[k] += v
	}
}

// retries is every run's bus retries so far, by kind.
func (s *shop) retries() map[string]float64 {
	out := map[string]float64{}
	now, _ := s.scrapeRetries()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.retried {
		out[k] += v
	}
	for k, v := range now {
		out[k] += v
	}
	return out
}

// scrapeRetries reads modshop_bus_messages_retried_total from /metrics,
// summed by its kind label ("all" where it has none).
func (s *shop) scrapeRetries() (map[string]float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(s.url() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, err
	}
	return retriesByKind(buf.String()), nil
}

// retriesByKind sums the bus retry counter's samples in a Prometheus text
// exposition by their kind label.
func retriesByKind(exposition string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, "modshop_bus_messages_retried_total") {
			continue
		}
		labels, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(value, "%g", &v); err != nil {
			continue
		}
		kind := "all"
		if _, rest, ok := strings.Cut(labels, `kind="`); ok {
			kind, _, _ = strings.Cut(rest, `"`)
		}
		out[kind] += v
	}
	return out
}

// logCount counts the lines of the shop's log (every run) that contain s.
func (s *shop) logCount(sub string) int {
	raw, err := os.ReadFile(s.log)
	if err != nil {
		return 0
	}
	return bytes.Count(raw, []byte(sub))
}

func (s *shop) races() string { return apptest.RacesIn(s.log) }

func (s *shop) tail(n int) string {
	raw, err := os.ReadFile(s.log)
	if err != nil {
		return err.Error()
	}
	// The access log (one INFO line a request) would push out what
	// matters.
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		if !strings.Contains(line, `level=INFO msg="http request"`) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
