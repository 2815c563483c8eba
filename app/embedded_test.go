package app_test

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles modshop once into a directory every user can read.
func buildBinary(t *testing.T) (bin, dir string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "modshop-embedded-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "modshop")
	out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin, dir
}

type process struct {
	cmd    *exec.Cmd
	log    *bytes.Buffer
	done   chan error
	base   string
	pgPort string
}

func startBinary(t *testing.T, bin, dataDir string, cred *syscall.Credential) *process {
	t.Helper()
	addr := freeAddr(t)
	pgAddr := freeAddr(t)
	pgPort := pgAddr[strings.LastIndexByte(pgAddr, ':')+1:]
	p := &process{log: &bytes.Buffer{}, done: make(chan error, 1), base: "http://" + addr, pgPort: pgPort}
	p.cmd = exec.Command(bin, "serve")
	p.cmd.Dir = dataDir
	p.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dataDir,
		"MODSHOP_HTTP_ADDR=" + addr,
		"MODSHOP_DATA_DIR=" + filepath.Join(dataDir, ".data"),
		"MODSHOP_EMBEDDED_PG_PORT=" + pgPort,
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if cred != nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.done
		}
	})
	waitReadyOrLog(t, p)
	return p
}

func waitReadyOrLog(t *testing.T, p *process) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("modshop exited before /readyz answered: %v\n%s", err, p.log)
		default:
		}
		if resp, err := http.Get(p.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("modshop not ready within 90s\n%s", p.log)
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("modshop exited with %v after SIGTERM\n%s", err, p.log)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("modshop did not stop after SIGTERM\n%s", p.log)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+p.pgPort, time.Second); err == nil {
		c.Close()
		t.Fatalf("the embedded PostgreSQL still listens on %s after shutdown", p.pgPort)
	}
}

// TestEmbedded_RunsAndKeepsDataAcrossRestarts is what a newcomer does:
// start the binary with no database configured, get a ready shop on the
// embedded PostgreSQL, stop it, start it again and find the data there.
// As root it runs both as root and as an ordinary user.
func TestEmbedded_RunsAndKeepsDataAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL servers; skipped with -short")
	}
	bin, _ := buildBinary(t)

	t.Run("as this user", func(t *testing.T) { embeddedRoundTrip(t, bin, nil) })
	if os.Geteuid() == 0 {
		t.Run("as an ordinary user", func(t *testing.T) {
			u, err := user.Lookup("nobody")
			if err != nil {
				t.Skipf("no ordinary user to run as: %v", err)
			}
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			embeddedRoundTrip(t, bin, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: false, Groups: []uint32{}})
		})
	}
}

func embeddedRoundTrip(t *testing.T, bin string, cred *syscall.Credential) {
	dir, err := os.MkdirTemp("", "modshop-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()
	p := startBinary(t, bin, dir, cred)
	t.Logf("cold start to /readyz (fresh data directory): %v", time.Since(start).Round(time.Millisecond))
	resp, err := http.Post(p.base+"/api/v1/users", "application/json",
		strings.NewReader(`{"username":"keeper","email":"keeper@example.com","password":"keep this data"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("register on the embedded database: %v %v\n%s", err, resp, p.log)
	}
	resp.Body.Close()
	p.stop(t)
	if _, err := os.Stat(filepath.Join(dir, ".data", "postgres")); err != nil {
		t.Fatalf("no data under ./.data: %v", err)
	}

	start = time.Now()
	p = startBinary(t, bin, dir, cred)
	t.Logf("start to /readyz reusing the data directory: %v", time.Since(start).Round(time.Millisecond))
	resp, err = http.Post(p.base+"/api/v1/sessions", "application/json",
		strings.NewReader(`{"login":"keeper","password":"keep this data"}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("log in after restart (data lost?): %v %v\n%s", err, resp, p.log)
	}
	resp.Body.Close()
	p.stop(t)
}
