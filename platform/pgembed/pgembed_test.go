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
	"syscall"
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

	other.kill(t)
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
	data, _ := os.Stat(filepath.Join(cfg.Dir, "data"))
	if pid, _, _ := postmasterPIDFile(filepath.Join(cfg.Dir, "data")); pid != 0 && postmasterState(pid, data) == alive {
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

// userProcess is another process that uses the server.
type userProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *strings.Builder
}

// startOtherProcess starts a process that uses the server in cfg, and
// returns once it has started it or attached to it.
func startOtherProcess(t *testing.T, cfg Config) *userProcess {
	t.Helper()
	return startOtherProcessAs(t, cfg, nil)
}

// startOtherProcessAs is startOtherProcess as the user a (nil: as this
// process's user), from a copy of the test binary that a can run.
func startOtherProcessAs(t *testing.T, cfg Config, a *account) *userProcess {
	t.Helper()
	payload, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	exe := os.Args[0]
	if a != nil {
		exe = filepath.Join(reachableTempDir(t), "pgembed.test")
		b, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), otherProcessEnv+"="+string(payload))
	cmd.Dir = "/"
	if a != nil {
		cmd.SysProcAttr = a.sysProcAttr()
	}
	p := &userProcess{cmd: cmd, stderr: &strings.Builder{}}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "started" {
		_ = cmd.Wait()
		t.Fatalf("the other process did not start the server: %v %q\n%s", err, line, p.stderr.String())
	}
	return p
}

// stop has the other process stop its use of the server, and checks that
// it could.
func (p *userProcess) stop(t *testing.T) {
	t.Helper()
	p.stdin.Close()
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("the other process failed to stop: %v\n%s", err, p.stderr.String())
	}
}

// kill ends the other process with SIGKILL.
func (p *userProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func serverListens(port uint32) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.FormatUint(uint64(port), 10), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestStart_AttachesToAServerStartedThroughAnotherPath: two processes
// reach one data directory by different paths (one through a link). The
// second must see the first one's postmaster as the live server it is,
// not take its postmaster.pid for a stale one and remove it (PostgreSQL
// then shuts down within a minute).
func TestStart_AttachesToAServerStartedThroughAnotherPath(t *testing.T) {
	real := reachableTempDir(t)
	link := filepath.Join(reachableTempDir(t), "link")
	symlink(t, real, link)
	port := freePort(t)
	other := startOtherProcess(t, Config{Dir: filepath.Join(real, "pg"), Port: port})

	s := startServer(t, Config{Dir: filepath.Join(link, "pg"), Port: port})
	if !s.Reused() {
		t.Errorf("Reused() = false: a second server was started on the directory")
	}
	if _, _, err := postmasterPIDFile(filepath.Join(real, "pg", "data")); err != nil {
		t.Errorf("the live server's postmaster.pid: %v", err)
	}
	stopServer(t, s)
	execSQL(t, s.URL(), "SELECT 1")
	other.stop(t)
}

// TestStart_DoesNotFollowADataLinkOutOfDir: Dir/data is the account's to
// replace with a link, say to another cluster's directory. What Start
// reads there or removes (a postmaster.pid it takes for stale) must stay
// within Dir.
func TestStart_DoesNotFollowADataLinkOutOfDir(t *testing.T) {
	dir := mkdir(t, filepath.Join(reachableTempDir(t), "pg"), 0o700)
	elsewhere := t.TempDir()
	pidFile := filepath.Join(elsewhere, "postmaster.pid")
	port := freePort(t)
	// A live process that is no postmaster: this one.
	content := fmt.Sprintf("%d\n%s\n0\n%d\n", os.Getpid(), elsewhere, port)
	if err := os.WriteFile(pidFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	symlink(t, elsewhere, filepath.Join(dir, "data"))

	s, err := Start(context.Background(), Config{Dir: dir, Port: port})
	if err == nil {
		t.Cleanup(func() { _ = s.Stop(context.Background()) })
		t.Error("Start used a data directory outside Dir")
	}
	t.Log(err)
	if b, err := os.ReadFile(pidFile); err != nil || string(b) != content {
		t.Errorf("%s was changed through the link Dir/data: %q, %v", pidFile, b, err)
	}
}

// TestStop_ThatCannotTakeTheLockLeavesTheDecisionToItsHolder: a Stop
// whose wait for the directory lock fails (another process's Start held
// it longer than the shop's shutdown waits) cannot tell whether it was the
// last user. The holder, should its Start fail after attaching, must then
// make the decision: nobody else uses the server, so it stops it.
func TestStop_ThatCannotTakeTheLockLeavesTheDecisionToItsHolder(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	s := startServer(t, cfg)
	held := holdDirLock(t, s.Dir())
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(cancelled); err == nil {
		t.Fatal("Stop returned no error while another process held the directory lock")
	}
	if !serverListens(cfg.Port) {
		t.Fatal("Stop stopped the server without the directory lock")
	}

	// The holder: a Start that attaches to the server, then fails.
	held.Close()
	if _, err := Start(cancelled, cfg); err == nil {
		t.Fatal("Start with a cancelled context succeeded")
	}
	if serverListens(cfg.Port) {
		t.Fatal("the server runs on with no users")
	}
}

// holdDirLock takes Dir's lock as another process's Start would.
func holdDirLock(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestStart_DoesNotAttachToAServerThatIsShuttingDown: a Stop whose pg_ctl
// outlived its context leaves a postmaster still shutting down (here, a
// smart shutdown waiting for a session). A Start meanwhile finds it
// running; once it is gone, the Start must start a server, not fail.
func TestStart_DoesNotAttachToAServerThatIsShuttingDown(t *testing.T) {
	cfg := Config{Dir: filepath.Join(reachableTempDir(t), "pg"), Port: freePort(t)}
	first := startServer(t, cfg)
	ctx := context.Background()
	session, err := pgx.Connect(ctx, first.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	pid, _, err := postmasterPIDFile(filepath.Join(first.Dir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, first.Dir(), "received smart shutdown request")

	type started struct {
		s   *Server
		err error
	}
	done := make(chan started, 1)
	go func() {
		s, err := Start(ctx, cfg)
		done <- started{s, err}
	}()
	// The start has been refused a connection: let the old server go.
	waitForLog(t, first.Dir(), "the database system is shutting down")
	session.Close(ctx)
	second := <-done
	if second.err != nil {
		t.Fatalf("Start: %v", second.err)
	}
	t.Cleanup(func() { _ = second.s.Stop(ctx) })
	execSQL(t, second.s.URL(), "SELECT 1")
}

// waitForLog waits until the server log in dir holds text.
func waitForLog(t *testing.T, dir, text string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(filepath.Join(dir, logFile)); strings.Contains(string(b), text) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the server log never said %q", text)
}
