package pgembed

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	RunChildIfRequested()
	runOtherProcessIfRequested()
	// As root, Start re-executes this binary; under -race every such child
	// would otherwise sleep a second on exit (the race runtime's default).
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

func TestStart_KeepsDataAcrossRestart(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t), Database: "shop"}

	began := time.Now()
	first := startServer(t, cfg)
	t.Logf("cold start (initdb): %s", time.Since(began))
	if !first.Created() || first.Reused() {
		t.Fatalf("first start: Created()=%v Reused()=%v, want a new cluster", first.Created(), first.Reused())
	}
	if !strings.HasSuffix(strings.SplitN(first.URL(), "?", 2)[0], "/shop") {
		t.Errorf("URL() = %s, want database shop", first.URL())
	}
	execSQL(t, first.URL(), "CREATE TABLE kept (note text)", "INSERT INTO kept VALUES ('still here')")
	versionFile := filepath.Join(cfg.Dir, "data", "PG_VERSION")
	before := modTime(t, versionFile)

	stopServer(t, first)
	if err := first.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v, want no-op", err)
	}

	began = time.Now()
	second := startServer(t, cfg)
	t.Logf("start on existing data: %s", time.Since(began))
	if second.Created() || second.Reused() {
		t.Errorf("restart: Created()=%v Reused()=%v, want a start on existing data", second.Created(), second.Reused())
	}
	if got := modTime(t, versionFile); !got.Equal(before) {
		t.Errorf("PG_VERSION modified (%s → %s): initdb ran again", before, got)
	}
	if note := queryNote(t, second.URL()); note != "still here" {
		t.Errorf("row after restart = %q, want %q", note, "still here")
	}
}

func TestStart_ReusesRunningServer(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	first := startServer(t, cfg)

	// A second Start stands in for another modshop process on the same
	// data directory, e.g. `modshop users create` while the shop runs.
	began := time.Now()
	second := startServer(t, cfg)
	t.Logf("reuse of a running server: %s", time.Since(began))
	if !second.Reused() || second.Created() {
		t.Errorf("Reused()=%v Created()=%v, want reuse", second.Reused(), second.Created())
	}
	if second.URL() != first.URL() {
		t.Errorf("URL() = %s, want %s", second.URL(), first.URL())
	}
	execSQL(t, second.URL(), "SELECT 1")
}

func TestStop_LeavesTheServerToItsOtherUsers(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	first := startServer(t, cfg)
	second := startServer(t, cfg)

	stopServer(t, second)
	execSQL(t, first.URL(), "SELECT 1")
	// The one that started the server is not special: it leaves, and the
	// server stays for a later user, which stops it when it leaves.
	third := startServer(t, cfg)
	stopServer(t, first)
	execSQL(t, third.URL(), "SELECT 1")
	stopServer(t, third)
	if serverListens(cfg.Port) {
		t.Fatal("the server still runs after its last user stopped it")
	}
}

func TestStop_DoesNotCountAProcessKilledWithSIGKILL(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	other := startOtherProcess(t, cfg)

	s := startServer(t, cfg)
	stopServer(t, s)
	if !serverListens(cfg.Port) {
		t.Fatal("Stop stopped the server while another process used it")
	}

	if err := other.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = other.Wait()
	// Its postmaster outlives it; the next user takes the server over.
	s = startServer(t, cfg)
	if !s.Reused() {
		t.Errorf("Reused() = false after kill -9 of the process that started the server")
	}
	stopServer(t, s)
	if serverListens(cfg.Port) {
		t.Fatal("the server still runs: a process killed with SIGKILL still counts as its user")
	}
}

// TestStart_FailedStartLeavesNoServerRunning cancels a start (Ctrl-C
// while the shop comes up): the server it launched goes down with it.
func TestStart_FailedStartLeavesNoServerRunning(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, cfg); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
	if serverListens(cfg.Port) {
		t.Fatal("a failed Start left its server running")
	}
	if pid, _, _ := postmasterPID(filepath.Join(cfg.Dir, "data")); pid != 0 && postmasterState(pid, filepath.Join(cfg.Dir, "data")) == alive {
		t.Fatalf("a failed Start left its postmaster (pid %d) running", pid)
	}
}

func TestStart_ConcurrentStartsRunInitdbOnce(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	servers := make([]*Server, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range servers {
		wg.Go(func() { servers[i], errs[i] = Start(context.Background(), cfg) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start %d: %v", i, err)
		}
		t.Cleanup(func() { servers[i].Stop(context.Background()) })
	}
	if servers[0].Created() == servers[1].Created() {
		t.Errorf("Created() = %v and %v, want exactly one initdb", servers[0].Created(), servers[1].Created())
	}
	if servers[0].Reused() == servers[1].Reused() {
		t.Errorf("Reused() = %v and %v, want exactly one reuse", servers[0].Reused(), servers[1].Reused())
	}
}

// TestStart_AsRootKeepsAnUnreachableClusterElsewhere is a clone under a
// mode-0700 directory such as /root, run as root: the postgres user cannot
// reach Dir there, so the cluster is kept in a directory it can reach,
// with Dir a link to it, and found there again by the next start.
func TestStart_AsRootKeepsAnUnreachableClusterElsewhere(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	locked := lockedTempDir(t)
	dir := filepath.Join(locked, "checkout", ".data", "pg")
	cfg := Config{Dir: dir, Port: freePort(t), relocateRoot: filepath.Join(reachableTempDir(t), "var", "lib", "modshop")}

	first := startServer(t, cfg)
	target, err := os.Readlink(dir)
	if err != nil {
		t.Fatalf("%s is not a link to the cluster's directory: %v", dir, err)
	}
	if filepath.Dir(target) != cfg.relocateRoot {
		t.Errorf("the cluster is in %s, want a directory in %s", target, cfg.relocateRoot)
	}
	if !first.Created() || !fileExists(filepath.Join(target, "data", "PG_VERSION")) {
		t.Fatalf("no cluster created in %s", target)
	}
	if !strings.Contains(first.Dir(), target) {
		t.Errorf("Dir() = %s, want %s", first.Dir(), target)
	}
	execSQL(t, first.URL(), "CREATE TABLE kept (note text)", "INSERT INTO kept VALUES ('still here')")
	stopServer(t, first)

	// The link is gone (say .data was removed by hand): the same place is
	// found again from the data directory's path.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	second := startServer(t, cfg)
	if second.Created() {
		t.Errorf("the second start created a new cluster instead of finding %s", target)
	}
	if note := queryNote(t, second.URL()); note != "still here" {
		t.Errorf("row after restart = %q, want %q", note, "still here")
	}
}

// TestStart_ExplainsUnreachableDataDir: as root, a data directory that
// exists where the postgres user cannot reach it is not moved (it may hold
// a cluster); Start says what to do instead.
func TestStart_ExplainsUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	locked := lockedTempDir(t)
	dir := filepath.Join(locked, "checkout", "pg")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}

	_, err := Start(context.Background(), Config{Dir: dir, Port: freePort(t), relocateRoot: filepath.Join(reachableTempDir(t), "modshop")})
	t.Log(err)
	if err == nil {
		t.Fatal("Start succeeded, want an error about the unreachable directory")
	}
	for _, want := range []string{dir, locked, "MODSHOP_DATA_DIR", "MODSHOP_DATABASE_URL", "ordinary user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("Start wrote into %s before failing: %v", dir, entries)
	}
}

func lockedTempDir(t *testing.T) string {
	t.Helper()
	locked, err := os.MkdirTemp("", "pgembed-locked-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(locked) })
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	return locked
}

func TestStart_ExplainsMissingPostgreSQL(t *testing.T) {
	cfg := Config{
		Dir:          filepath.Join(reachableTempDir(t), "pg"),
		Port:         freePort(t),
		installGlobs: []string{filepath.Join(t.TempDir(), "*")},
		// A closed port: the download fails at once, as it does offline.
		repositoryURL: "http://127.0.0.1:" + strconv.FormatUint(uint64(freePort(t)), 10),
	}
	_, err := Start(context.Background(), cfg)
	t.Log(err)
	if err == nil {
		t.Fatal("Start succeeded without PostgreSQL binaries")
	}
	for _, want := range []string{"apt-get install postgresql", "MODSHOP_DATABASE_URL", "unable to connect"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestStart_RefusesClusterOfMissingVersion(t *testing.T) {
	dir := filepath.Join(reachableTempDir(t), "pg")
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// Version 9.6 is known to the library but not installed here.
	if err := os.WriteFile(filepath.Join(data, "PG_VERSION"), []byte("9.6\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(installedVersions(defaultInstallGlobs)) == 0 {
		t.Skip("no installed PostgreSQL; this case would download 9.6")
	}

	_, err := Start(context.Background(), Config{Dir: dir, Port: freePort(t)})
	if err == nil || !strings.Contains(err.Error(), "created by PostgreSQL 9.6") {
		t.Fatalf("Start = %v, want a refusal naming version 9.6", err)
	}
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err != nil {
		t.Errorf("the cluster was touched: %v", err)
	}
}

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return s
}

func stopServer(t *testing.T, s *Server) {
	t.Helper()
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

// reachableTempDir returns a temporary directory that the postgres user can
// traverse: t.TempDir's parent has mode 0700.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func freePort(t *testing.T) uint32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint32(l.Addr().(*net.TCPAddr).Port)
}

func execSQL(t *testing.T, url string, statements ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	for _, s := range statements {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func queryNote(t *testing.T, url string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var note string
	if err := conn.QueryRow(ctx, "SELECT note FROM kept").Scan(&note); err != nil {
		t.Fatalf("read row: %v", err)
	}
	return note
}

func modTime(t *testing.T, path string) time.Time {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.ModTime()
}

// otherProcessEnv asks the test binary to act as another process using
// the server: start it from the Config in the variable, say so, and hold
// it until stdin closes or the process is killed.
const otherProcessEnv = "PGEMBED_TEST_OTHER_PROCESS"

func runOtherProcessIfRequested() {
	payload, ok := os.LookupEnv(otherProcessEnv)
	if !ok {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(payload), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("started")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := s.Stop(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startOtherProcess starts a process that uses the server in cfg, and
// returns once it has started it or attached to it.
func startOtherProcess(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	payload, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), otherProcessEnv+"="+string(payload))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "started" {
		_ = cmd.Wait()
		t.Fatalf("the other process did not start the server: %v %q\n%s", err, line, stderr.String())
	}
	return cmd
}

func serverListens(port uint32) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.FormatUint(uint64(port), 10), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
