// Package pgembed runs the PostgreSQL server that modshop manages itself when no
// database URL is configured (the "embedded default").
//
// It owns one directory: the cluster lives in Dir/data and survives restarts, the
// server log is Dir/postgres.log, and Dir/run is scratch space that
// embedded-postgres empties at every start. The server is an ordinary postmaster
// that outlives the process which started it, so a later Start (after a crash,
// or from another process) attaches to it instead of starting a second one.
//
// Every process that uses the server is registered from Start to Stop (a
// shared flock, which dies with the process), and Stop stops the server
// only when no other process uses it: whichever leaves last stops it, be it
// the one that started it or not. See docs/adr/0002-embedded-database-has-many-users.md.
//
// PostgreSQL refuses to run as root. When modshop runs as root, pgembed
// re-executes the current binary as the "postgres" (or "nobody") user to start
// the server; main and every TestMain must therefore call RunChildIfRequested
// first. When that user cannot reach Dir (a clone under /root), the files
// go in /var/lib/modshop instead and Dir becomes a link to them (see
// docs/adr/0003-root-keeps-the-cluster-where-postgres-can-reach-it.md).
package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config says where the embedded server keeps its files and where it listens.
type Config struct {
	// Dir holds everything the server writes, e.g. "./.data/postgres".
	Dir string
	// Port is the TCP port on 127.0.0.1. Avoid 5432, where a system
	// PostgreSQL usually listens.
	Port uint32
	// Database is created on first start if missing; default "modshop".
	Database string
	// Logger receives pgembed's own messages; nil discards them.
	Logger *slog.Logger

	// installGlobs overrides where installed PostgreSQL versions are looked
	// for (tests use it to force the download path).
	installGlobs []string
	// repositoryURL overrides the library's Maven repository (tests point it
	// at a closed port so the download fails fast).
	repositoryURL string
	// relocateRoot overrides defaultRelocateRoot (tests keep out of /var/lib).
	relocateRoot string
}

// Server is a running embedded PostgreSQL server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	runAs    *account // nil: PostgreSQL runs as the current user
	bin      binaries
	password string
	reused   bool
	created  bool

	// dir is Dir, opened: root reaches every file there through it, so
	// that nobody can swap Dir for another directory under it.
	dir *os.Root

	mu      sync.Mutex
	users   *os.File // holds this Server's place in the register of users
	stopped bool
}

// Start starts the server in cfg.Dir, or attaches to the one already running
// there (left behind by an earlier process, e.g. after kill -9), and returns
// once it accepts connections and cfg.Database exists. ctx bounds the waits
// (for another process's start, the root child, readiness); a start running
// in-process cannot be interrupted.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if os.Getenv(childEnv) != "" {
		// Only reachable when the re-executed binary skipped
		// RunChildIfRequested; starting again from here would recurse.
		return nil, errors.New("start embedded PostgreSQL: this process was re-executed as the pgembed child; call pgembed.RunChildIfRequested first thing in main and TestMain")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("start embedded PostgreSQL: %w", err)
	}
	s, err := start(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded PostgreSQL in %s: %w", cfg.Dir, err)
	}
	return s, nil
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("Config.Dir is empty")
	}
	if c.Port == 0 {
		return c, errors.New("Config.Port is 0")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("resolve %s: %w", c.Dir, err)
	}
	// pg_ctl hands the start options to a shell inside double quotes.
	if strings.ContainsAny(dir, "\"$`\\\n") {
		return c, fmt.Errorf("directory %q contains a character PostgreSQL's start options cannot carry (\" $ ` \\ newline)", dir)
	}
	c.Dir = dir
	if c.Database == "" {
		c.Database = "modshop"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.relocateRoot == "" {
		c.relocateRoot = defaultRelocateRoot
	}
	return c, nil
}

func start(ctx context.Context, cfg Config) (_ *Server, err error) {
	began := time.Now()
	runAs, err := unprivilegedAccount()
	if err != nil {
		return nil, err
	}
	placed, dir, err := placeDir(cfg.Dir, runAs, cfg.relocateRoot, cfg.Logger)
	if err != nil {
		return nil, err
	}
	cfg.Dir = placed
	s := &Server{cfg: cfg, log: cfg.Logger, runAs: runAs, dir: dir}
	defer func() {
		if err != nil {
			_ = dir.Close() // a directory: nothing to flush
		}
	}()
	if runAs != nil {
		if err := runAs.checkCluster(dir); err != nil {
			return nil, err
		}
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Registered before looking for a running server: a Stop that waits
	// for the directory lock then sees this process and leaves the server
	// running.
	if s.users, err = joinUsers(dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.abandon(ctx)
		}
	}()

	if s.password, err = loadOrCreatePassword(dir); err != nil {
		return nil, err
	}
	dataMajor, err := dataVersion(dir)
	if err != nil {
		return nil, err
	}
	if s.bin, err = findBinaries(cfg, dataMajor); err != nil {
		return nil, err
	}

	running, err := s.findRunning()
	if err != nil {
		return nil, err
	}
	if running {
		s.reused = true
	} else {
		s.created = dataMajor == ""
		if err := s.launch(ctx); err != nil {
			return nil, err
		}
	}
	err = s.waitReady(ctx)
	if s.reused && errors.Is(err, errServerExited) {
		s.log.Info("the embedded PostgreSQL found running has shut down; starting it again", "dir", cfg.Dir)
		if err := s.launchAgain(ctx); err != nil {
			return nil, err
		}
		err = s.waitReady(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w%s", err, logTail(dir))
	}
	if err := s.ensureDatabase(ctx); err != nil {
		return nil, err
	}
	s.log.Info("embedded PostgreSQL ready",
		"dir", cfg.Dir, "port", cfg.Port, "version", s.bin.major,
		"reused", s.reused, "created", s.created, "took", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// abandon ends a Start that failed, with the directory lock held: it
// leaves the register and, when nobody else uses the server, stops it,
// be it one this Start launched (say ctx was cancelled by Ctrl-C while
// the server came up) or one it found running. A Stop that could not
// take the lock held by this Start has left the register without making
// that decision, so it falls to this Start.
func (s *Server) abandon(ctx context.Context) {
	// Closing the register's descriptor drops its flock, whatever Close
	// reports (a read-only file has nothing to flush); so below.
	_ = s.users.Close()
	if s.bin.dir == "" {
		return // it failed before it could look for a server
	}
	last, held, err := lastUser(s.dir)
	if err != nil || !last {
		return
	}
	defer held.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.stop(ctx); err != nil {
		s.log.Warn("stop the embedded PostgreSQL after a failed start", "dir", s.cfg.Dir, "err", err)
	}
}

// launchAgain starts a server in place of one that Start found running
// but that has exited since: it was shutting down (say, a Stop whose
// pg_ctl outlived its context) or it died.
func (s *Server) launchAgain(ctx context.Context) error {
	running, err := s.findRunning() // clears what the last one left
	if err != nil || running {
		return err
	}
	s.reused = false
	return s.launch(ctx)
}

// launch starts a postmaster on the data directory, as the unprivileged
// account when running as root.
func (s *Server) launch(ctx context.Context) error {
	if s.runAs != nil {
		// Only now that no postmaster runs on Dir: a running one's files
		// are not root's to hand around.
		if err := chownTree(s.dir, s.runAs); err != nil {
			return err
		}
	}
	j := job{
		Dir:           s.cfg.Dir,
		Port:          s.cfg.Port,
		Password:      s.password,
		BinDir:        s.bin.dir,
		Version:       string(s.bin.version),
		RepositoryURL: s.cfg.repositoryURL,
	}
	var err error
	if s.runAs != nil {
		err = runChild(ctx, j, s.runAs, s.dir)
	} else {
		err = startWithLibrary(j)
	}
	if err == nil {
		return nil
	}
	if !s.bin.installed && !fileExists(filepath.Join(s.bin.dir, "bin", "pg_ctl")) {
		return fmt.Errorf("no installed PostgreSQL found (looked in %s) and getting PostgreSQL %s from the internet failed: %w\n"+
			"Install PostgreSQL (apt-get install postgresql) or set MODSHOP_DATABASE_URL to an existing database",
			strings.Join(s.cfg.searchGlobs(), ", "), s.bin.version, err)
	}
	return fmt.Errorf("%w%s", err, logTail(s.dir))
}

// URL is a superuser connection URL for the configured database.
func (s *Server) URL() string {
	return s.urlFor(s.cfg.Database)
}

func (s *Server) urlFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", s.password),
		Host:     "127.0.0.1:" + strconv.FormatUint(uint64(s.cfg.Port), 10),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Reused reports whether Start attached to a server that was already running
// instead of starting one.
func (s *Server) Reused() bool { return s.reused }

// Created reports whether Start created a new cluster (ran initdb); false
// means existing data in Dir/data was used.
func (s *Server) Created() bool { return s.created }

// Dir is the directory the server's files are in: Config.Dir, or where
// a link there leads.
func (s *Server) Dir() string { return s.cfg.Dir }

// Stop ends this Server's use of the server and shuts the server down
// (pg_ctl stop -m fast: sessions are disconnected, nothing committed is
// lost) unless another process, or another Server in this one, still uses
// it. Whether this Server started the server or found it running makes no
// difference. Calling Stop again is a no-op.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	defer s.dir.Close()
	// Out of the register first: should the directory lock not come in
	// time, whoever holds it no longer counts this Server, and makes the
	// decision below in its place (a Stop; or a Start, which on failure
	// stops a server nobody uses).
	_ = s.users.Close()
	if err := s.leave(ctx); err != nil {
		return fmt.Errorf("stop embedded PostgreSQL in %s: %w", s.cfg.Dir, err)
	}
	return nil
}

func (s *Server) leave(ctx context.Context) error {
	// The lock keeps a concurrent Start from attaching to a server that is
	// shutting down, and from joining between the look for other users and
	// the shutdown.
	unlock, err := lockDir(ctx, s.dir)
	if err != nil {
		return err
	}
	defer unlock()
	last, held, err := lastUser(s.dir)
	if err != nil {
		return err
	}
	if !last {
		s.log.Info("embedded PostgreSQL left running for the other processes that use it", "dir", s.cfg.Dir, "port", s.cfg.Port)
		return nil
	}
	defer held.Close()
	return s.stop(ctx)
}

func (s *Server) stop(ctx context.Context) error {
	running, err := s.findRunning()
	if err != nil || !running {
		return err
	}
	// The library can only stop the instance it started in this process, so
	// pg_ctl is run directly; it must not run as root either.
	// #nosec G204 -- pg_ctl of the PostgreSQL installation findBinaries chose, on our own data directory
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin.dir, "bin", "pg_ctl"),
		"stop", "-w", "-m", "fast", "-D", s.dataDir())
	cmd.Dir = s.cfg.Dir
	if s.runAs != nil {
		cmd.SysProcAttr = s.runAs.sysProcAttr()
		cmd.Env = accountEnvironment(s.cfg.Dir)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	s.log.Info("embedded PostgreSQL stopped", "dir", s.cfg.Dir, "port", s.cfg.Port)
	return nil
}

func (s *Server) dataDir() string { return filepath.Join(s.cfg.Dir, "data") }

// errServerExited is waitReady's answer when the postmaster is gone.
var errServerExited = errors.New("exited")

// waitReady waits until the server accepts connections: a reused server may
// still be recovering from a crash.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		conn, err := connect(ctx, s.urlFor("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		if isAuthError(err) {
			return fmt.Errorf("the server on port %d rejects the password in %s (was that file replaced?): %w",
				s.cfg.Port, filepath.Join(s.cfg.Dir, passwordFile), err)
		}
		if !s.postmasterAlive() {
			return fmt.Errorf("the server on port %d %w: %w", s.cfg.Port, errServerExited, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server on port %d did not accept connections within %s: %w", s.cfg.Port, readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ensureDatabase creates cfg.Database if missing. It is done here rather than
// by the library, which only creates it right after initdb: a process killed
// in between would leave a cluster without the database forever.
func (s *Server) ensureDatabase(ctx context.Context) error {
	if s.cfg.Database == "postgres" {
		return nil
	}
	conn, err := connect(ctx, s.urlFor("postgres"))
	if err != nil {
		return fmt.Errorf("connect to create database %q: %w", s.cfg.Database, err)
	}
	defer conn.Close(ctx)
	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", s.cfg.Database).Scan(&exists)
	if err != nil {
		return fmt.Errorf("look up database %q: %w", s.cfg.Database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.cfg.Database}.Sanitize()); err != nil {
		return fmt.Errorf("create database %q: %w", s.cfg.Database, err)
	}
	return nil
}
