package apptest

// This file supervises the modshop processes of a split shop: start,
// readiness, SIGKILL, SIGTERM and restart, their logs.

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is one running modshop command.
type process struct {
	name, addr string
	args, env  []string
	log        string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	expected bool // the current run is being ended on purpose
}

func (p *process) start(bin string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return errors.New("already running")
		}
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== %s: modshop %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(p.args, " "))
	cmd := exec.Command(bin, p.args...) // #nosec G204 -- the modshop binary this harness built, with arguments it chose
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	setParentDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	p.cmd, p.exited, p.waitErr, p.expected = cmd, make(chan struct{}), nil, false
	exited := p.exited
	go func() {
		err := cmd.Wait()
		_ = logf.Close() // the process wrote its last line; nothing to report to
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// waitReady waits until the process answers /readyz with 200; a race
// build on a busy machine may take a while.
func (p *process) waitReady() error {
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-exited:
			return fmt.Errorf("exited before it was ready (%v):\n%s", p.exitErr(), p.tail(30))
		default:
		}
		if resp, err := client.Get("http://" + p.addr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within 2 minutes:\n%s", p.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// down reports whether the test ended the process (kill or stop) and it
// has not been started again.
func (p *process) down() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !p.expected {
		return false
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *process) kill() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.expected = true
	p.mu.Unlock()
	if cmd == nil {
		return errors.New("not started")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-exited
	return nil
}

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30s). A
// process that had exited unasked is reported.
func (p *process) stop() error {
	p.mu.Lock()
	cmd, exited, expected := p.cmd, p.exited, p.expected
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		if expected {
			return nil
		}
		return fmt.Errorf("exited while the test ran: %v", p.exitErr())
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		return errors.New("did not stop within 30s of SIGTERM")
	}
	if err := p.exitErr(); err != nil {
		return fmt.Errorf("stopped with %v", err)
	}
	return nil
}

// races returns what the race detector wrote to the log, if anything.
func (p *process) races() string { return RacesIn(p.log) }

// RacesIn returns what the race detector wrote to the log file of a shop
// built with -race (from its first report, at most 8,000 bytes), if
// anything.
func RacesIn(log string) string {
	raw, err := os.ReadFile(log)
	if err != nil {
		return ""
	}
	i := bytes.Index(raw, []byte("WARNING: DATA RACE"))
	if i < 0 {
		return ""
	}
	return string(raw[i:min(len(raw), i+8000)])
}

func (p *process) tail(n int) string {
	raw, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processEnv is the environment of a child process: the settings given,
// and from this one only what finding programs and temporary files needs
// (none of its MODSHOP_* settings).
func processEnv(settings map[string]string) []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}

func freeLoopbackAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
