package benchkit

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"runtime"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Server is what a report says of the PostgreSQL server measured.
type Server struct {
	Version           string // server_version
	Host              string // host:port of its URL, without user or password
	SynchronousCommit string
	WALSyncMethod     string
}

// DescribeServer reads the settings of the server at serverURL. Fields it
// could not read are "?", and the error says why.
func DescribeServer(ctx context.Context, serverURL string) (Server, error) {
	s := Server{Version: "?", Host: HostOf(serverURL), SynchronousCommit: "?", WALSyncMethod: "?"}
	conn, err := sql.Open("pgx", serverURL)
	if err != nil {
		return s, fmt.Errorf("describe server: %w", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var version, syncCommit, walSync string
	err = conn.QueryRowContext(ctx, `SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('wal_sync_method')`).
		Scan(&version, &syncCommit, &walSync)
	if err != nil {
		return s, fmt.Errorf("describe server: %w", err)
	}
	s.Version, s.SynchronousCommit, s.WALSyncMethod = version, syncCommit, walSync
	return s, nil
}

// HostOf is a server URL's host and port, without user or password, or "?".
func HostOf(serverURL string) string {
	u, err := url.Parse(serverURL)
	if err != nil || u.Host == "" {
		return "?"
	}
	return u.Host
}

// Machine is the line the reports print about where they ran: CPUs,
// GOMAXPROCS, Go version and platform.
func Machine() string {
	return fmt.Sprintf("%d CPUs, GOMAXPROCS %d, %s %s/%s", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
