package app_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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

// asEachUser runs f as the current user and, when that is root, again as
// an ordinary user (nobody): the embedded PostgreSQL is started differently
// in the two cases.
func asEachUser(t *testing.T, f func(t *testing.T, cred *syscall.Credential)) {
	t.Run("as this user", func(t *testing.T) { f(t, nil) })
	if os.Geteuid() != 0 {
		return
	}
	t.Run("as an ordinary user", func(t *testing.T) { f(t, ordinaryUser(t)) })
}

// ordinaryUser is the credential to run modshop as nobody.
func ordinaryUser(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no ordinary user to run as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// checkout is a directory modshop runs in, as a clone would be: the
// embedded PostgreSQL keeps its data in ./.data there. Every process
// started through it uses the same data directory and PostgreSQL port.
type checkout struct {
	bin    string
	dir    string
	pgPort string
	cred   *syscall.Credential
	// env is added to every process's environment.
	env []string
}

func newCheckout(t *testing.T, bin string, cred *syscall.Credential) *checkout {
	t.Helper()
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
	pgAddr := freeAddr(t)
	return &checkout{
		bin:    bin,
		dir:    dir,
		pgPort: pgAddr[strings.LastIndexByte(pgAddr, ':')+1:],
		cred:   cred,
		env:    []string{"MODSHOP_DATA_DIR=" + filepath.Join(dir, ".data")},
	}
}

// command is modshop with args, run in the checkout with httpAddr.
func (c *checkout) command(httpAddr string, args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.dir,
		"MODSHOP_HTTP_ADDR=" + httpAddr,
		"MODSHOP_EMBEDDED_PG_PORT=" + c.pgPort,
	}, c.env...)
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// run runs a modshop command to its end and returns its output.
func (c *checkout) run(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := c.command(freeAddr(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(2 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("modshop %s did not finish within 2 minutes\n%s", strings.Join(args, " "), out.String())
		return "", nil
	}
}

// serve starts `modshop serve` on httpAddr (a free one when empty) and
// waits until it is ready.
func (c *checkout) serve(t *testing.T, httpAddr string) *process {
	t.Helper()
	if httpAddr == "" {
		httpAddr = freeAddr(t)
	}
	p := c.startServe(t, httpAddr)
	waitReadyOrLog(t, p)
	return p
}

// startServe starts `modshop serve` on httpAddr without waiting for it.
func (c *checkout) startServe(t *testing.T, httpAddr string) *process {
	t.Helper()
	p := &process{log: &syncBuffer{}, exited: make(chan struct{}), base: "http://" + httpAddr, pgPort: c.pgPort}
	if strings.HasPrefix(httpAddr, ":") {
		p.base = "http://127.0.0.1" + httpAddr
	}
	p.cmd = c.command(httpAddr, "serve")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			<-p.exited
		}
	})
	return p
}

// syncBuffer is a bytes.Buffer that a process may write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type process struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	base   string
	pgPort string
	// exited is closed once the process has exited, with its error in err.
	exited chan struct{}
	err    error
}

func waitReadyOrLog(t *testing.T, p *process) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			t.Fatalf("modshop exited before /readyz answered: %v\n%s", p.err, p.log)
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

// signal sends sig and waits for a clean exit.
func (p *process) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("modshop exited with %v after %v\n%s", p.err, sig, p.log)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("modshop did not stop after %v\n%s", sig, p.log)
	}
}

// kill ends the process with SIGKILL, as kill -9 does.
func (p *process) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// stop sends SIGTERM, waits for a clean exit and checks that the embedded
// PostgreSQL went down with the shop (the process was its last user).
func (p *process) stop(t *testing.T) {
	t.Helper()
	p.signal(t, syscall.SIGTERM)
	if postgresListens(p.pgPort) {
		t.Fatalf("the embedded PostgreSQL still listens on %s after shutdown\n%s", p.pgPort, p.log)
	}
}

func postgresListens(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// answers checks that the shop serves a request that writes to its
// database: a registration.
func (p *process) answers(t *testing.T) {
	t.Helper()
	name := fmt.Sprintf("probe_%d", time.Now().UnixNano())
	resp, err := http.Post(p.base+"/api/v1/users", "application/json",
		strings.NewReader(`{"username":"`+name+`","email":"`+name+`@example.com","password":"a probe's password"}`))
	if err != nil {
		t.Fatalf("register on the running shop: %v\n%s", err, p.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register on the running shop: %s, want 201 Created\n%s", resp.Status, p.log)
	}
}

// logIn checks that username can log in with password.
func (p *process) logIn(t *testing.T, username, password string) {
	t.Helper()
	resp, err := http.Post(p.base+"/api/v1/sessions", "application/json",
		strings.NewReader(`{"login":"`+username+`","password":"`+password+`"}`))
	if err != nil {
		t.Fatalf("log in as %s: %v\n%s", username, err, p.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("log in as %s: %s, want 201 Created\n%s", username, resp.Status, p.log)
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
	asEachUser(t, func(t *testing.T, cred *syscall.Credential) {
		c := newCheckout(t, bin, cred)

		start := time.Now()
		p := c.serve(t, "")
		t.Logf("cold start to /readyz (fresh data directory): %v", time.Since(start).Round(time.Millisecond))
		resp, err := http.Post(p.base+"/api/v1/users", "application/json",
			strings.NewReader(`{"username":"keeper","email":"keeper@example.com","password":"keep this data"}`))
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("register on the embedded database: %v %v\n%s", err, resp, p.log)
		}
		resp.Body.Close()
		p.stop(t)
		if _, err := os.Stat(filepath.Join(c.dir, ".data", "postgres")); err != nil {
			t.Fatalf("no data under ./.data: %v", err)
		}

		start = time.Now()
		p = c.serve(t, "")
		t.Logf("start to /readyz reusing the data directory: %v", time.Since(start).Round(time.Millisecond))
		p.logIn(t, "keeper", "keep this data")
		p.stop(t)
	})
}
