package pgembed

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// job is everything needed to start the postmaster; it travels to a
// re-executed child as JSON.
type job struct {
	Dir           string
	Port          uint32
	Password      string
	BinDir        string
	Version       string
	RepositoryURL string
}

// libraryMu serializes library starts within a process so that
// forgetLibraryLogs can tell which temporary log file a start created.
var libraryMu sync.Mutex

// startWithLibrary starts the postmaster through embedded-postgres (running
// initdb first when Dir/data holds no cluster). It runs in-process, or in the
// re-executed child when modshop is root.
func startWithLibrary(j job) error {
	logPath := filepath.Join(j.Dir, logFile)
	// #nosec G304 -- Dir/postgres.log, opened by Dir's owner (as root, this runs in the child as the account)
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer log.Close()

	libraryMu.Lock()
	defer libraryMu.Unlock()
	before := libraryLogsOpen()
	pg := embeddedpostgres.NewDatabase(j.libraryConfig(log))
	err = pg.Start()
	forgetLibraryLogs(before)
	// pg holds the temporary log open; it must not be collected (closing
	// the file) before forgetLibraryLogs has seen it.
	runtime.KeepAlive(pg)
	if err != nil {
		return fmt.Errorf("start PostgreSQL from %s: %w", j.BinDir, err)
	}
	return nil
}

func (j job) libraryConfig(log *os.File) embeddedpostgres.Config {
	cfg := embeddedpostgres.DefaultConfig().
		Version(embeddedpostgres.PostgresVersion(j.Version)).
		BinariesPath(j.BinDir).
		// Only ever cached downloads; under Dir because the unprivileged
		// account has no usable home directory.
		CachePath(filepath.Join(j.Dir, "cache")).
		// The library deletes RuntimePath at every start: data lives beside it.
		RuntimePath(filepath.Join(j.Dir, "run")).
		DataPath(filepath.Join(j.Dir, "data")).
		Port(j.Port).
		Username("postgres").
		Password(j.Password).
		// pgembed creates the application database itself (ensureDatabase).
		Database("postgres").
		// UTF8 whatever the environment's locale; C collation so that
		// ordering is the same on every machine.
		Encoding("UTF8").
		Locale("C").
		StartTimeout(30 * time.Second).
		// initdb's and pg_ctl's output; the server writes the same file
		// through its logging collector.
		Logger(log).
		StartParameters(map[string]string{
			"listen_addresses": "127.0.0.1",
			// A shop process keeps a pool per module and one for the bus
			// (up to about 60 connections), and CLI commands or a second
			// serve may share the server (docs/adr/0002): 100 is tight.
			"max_connections": "500",
			// No Unix socket: TCP is all modshop uses, and the default
			// socket directory (/var/run/postgresql) belongs to root.
			"unix_socket_directories": "",
			// The library hands the server a temporary file as stderr;
			// the collector puts the server's log under Dir instead.
			"logging_collector": "on",
			"log_directory":     j.Dir,
			"log_filename":      logFile,
		})
	if j.RepositoryURL != "" {
		cfg = cfg.BinaryRepositoryURL(j.RepositoryURL)
	}
	return cfg
}

// The library writes initdb's and pg_ctl's output to a file from
// os.CreateTemp that it never removes; pgembed has copied that output into
// the server log by the time Start returns.
const libraryLogPrefix = "embedded_postgres_log"

// libraryLogsOpen lists the library's temporary log files this process has
// open, read from /proc/self/fd (nothing on systems without it).
func libraryLogsOpen() map[string]bool {
	open := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return open
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(filepath.Base(target), libraryLogPrefix) {
			open[target] = true
		}
	}
	return open
}

// forgetLibraryLogs removes the library's temporary log files opened since
// before: with libraryMu held, they belong to the start that just ended.
func forgetLibraryLogs(before map[string]bool) {
	for path := range libraryLogsOpen() {
		if !before[path] {
			_ = os.Remove(path) // a stray temporary file at worst
		}
	}
}
