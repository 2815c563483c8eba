package pgembed

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
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

	// A second Start stands in for modshop coming back after kill -9: the
	// postmaster it left behind is still running.
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

	stopServer(t, second)
	if err := first.Stop(context.Background()); err != nil {
		t.Errorf("Stop of a server already stopped through another Server: %v", err)
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

func TestStart_ExplainsUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands PostgreSQL to another user")
	}
	locked, err := os.MkdirTemp("", "pgembed-locked-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(locked) })
	if err := os.Chmod(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(locked, "checkout", "pg")

	_, err = Start(context.Background(), Config{Dir: dir, Port: freePort(t)})
	t.Log(err)
	if err == nil {
		t.Fatal("Start succeeded, want an error about the unreachable directory")
	}
	for _, want := range []string{dir, locked, "MODSHOP_DATA_DIR", "MODSHOP_DATABASE_URL", "ordinary user"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, statErr := os.Stat(filepath.Dir(dir)); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("Start created directories before failing (stat: %v)", statErr)
	}
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
