package db_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// TestIsUnavailable_RealErrors makes each error for real against the test
// server (a closed port, a cut connection, a terminated backend, a
// statement timeout, a role out of connections, ...) and checks how
// IsUnavailable classifies it. Only states no test can provoke on demand
// (a crash, a server starting up) are built by hand.
func TestIsUnavailable_RealErrors(t *testing.T) {
	t.Parallel()
	dbURL := testkit.NewDatabase(t)
	ctx := context.Background()

	cases := []struct {
		name string
		want bool
		make func(t *testing.T) error
	}{
		{"connection refused (nothing listens)", true, func(t *testing.T) error {
			return openErr(t, withHost(t, dbURL, closedPort(t)))
		}},
		{"connection refused (proxy cut)", true, func(t *testing.T) error {
			u, proxy := testkit.NewProxiedDatabase(t)
			proxy.Cut()
			return openErr(t, u)
		}},
		{"connection lost mid-session (proxy cut)", true, func(t *testing.T) error {
			u, proxy := testkit.NewProxiedDatabase(t)
			conn := sqlConn(t, u)
			proxy.Cut()
			_, err := conn.ExecContext(ctx, "SELECT 1")
			return err
		}},
		{"connection lost, through gorm", true, func(t *testing.T) error {
			u, proxy := testkit.NewProxiedDatabase(t)
			pool, err := db.Open(ctx, u, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pool.Close() })
			g, err := db.Gorm(pool)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Cut()
			var n int
			return g.WithContext(ctx).Raw("SELECT 1").Scan(&n).Error
		}},
		{"connection lost mid-session, pgx itself (proxy cut)", true, func(t *testing.T) error {
			u, proxy := testkit.NewProxiedDatabase(t)
			conn, err := pgx.Connect(ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close(ctx) })
			proxy.Cut()
			_, err = conn.Exec(ctx, "SELECT 1")
			return err
		}},
		{"backend terminated (pg_terminate_backend)", true, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			var pid int
			if err := conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			admin := sqlConn(t, dbURL)
			var ok bool
			if err := admin.QueryRowContext(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&ok); err != nil || !ok {
				t.Fatalf("terminate backend %d: %v %v", pid, ok, err)
			}
			_, err := conn.ExecContext(ctx, "SELECT 1")
			return err
		}},
		{"statement timeout (57014)", true, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			if _, err := conn.ExecContext(ctx, "SET statement_timeout = '20ms'"); err != nil {
				t.Fatal(err)
			}
			_, err := conn.ExecContext(ctx, "SELECT pg_sleep(5)")
			return err
		}},
		{"context deadline during a call", true, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := conn.ExecContext(dctx, "SELECT pg_sleep(5)")
			return err
		}},
		{"too many connections for the role (53300)", true, func(t *testing.T) error {
			role := limitedRole(t, dbURL)
			u, _ := url.Parse(dbURL)
			u.User = url.UserPassword(role, "not used")
			return openErr(t, u.String())
		}},
		{"pgx conn closed", true, func(t *testing.T) error {
			conn, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
			_, err = conn.Exec(ctx, "SELECT 1")
			return err
		}},
		{"sql.ErrConnDone", true, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			conn.Close()
			_, err := conn.ExecContext(ctx, "SELECT 1")
			return err
		}},
		{"driver.ErrBadConn, wrapped", true, func(*testing.T) error { return fmt.Errorf("load: %w", driver.ErrBadConn) }},
		{"connection failure (08006)", true, pgState("08006")},
		{"server starting up (57P03)", true, pgState("57P03")},
		{"crash shutdown (57P02)", true, pgState("57P02")},
		{"out of memory (53200)", true, pgState("53200")},

		{"unique violation", false, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			_, err := conn.ExecContext(ctx, "CREATE TEMP TABLE u (id int PRIMARY KEY); INSERT INTO u VALUES (1), (1)")
			return err
		}},
		{"syntax error", false, func(t *testing.T) error {
			_, err := sqlConn(t, dbURL).ExecContext(ctx, "SELEC 1")
			return err
		}},
		{"division by zero", false, func(t *testing.T) error {
			_, err := sqlConn(t, dbURL).ExecContext(ctx, "SELECT 1/0")
			return err
		}},
		{"no rows", false, func(t *testing.T) error {
			var n int
			return sqlConn(t, dbURL).QueryRowContext(ctx, "SELECT 1 WHERE false").Scan(&n)
		}},
		{"no rows, through gorm", false, func(t *testing.T) error {
			pool, err := db.Open(ctx, dbURL, 1)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pool.Close() })
			g, _ := db.Gorm(pool)
			var row struct{ Relname string }
			return g.WithContext(ctx).Table("pg_class").Where("false").Take(&row).Error
		}},
		{"context cancelled by the caller", false, func(t *testing.T) error {
			conn := sqlConn(t, dbURL)
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			_, err := conn.ExecContext(cctx, "SELECT pg_sleep(5)")
			return err
		}},
		{"serialization failure (40001)", false, pgState("40001")},
		{"deadlock (40P01)", false, pgState("40P01")},
		{"gorm.ErrRecordNotFound", false, func(*testing.T) error { return gorm.ErrRecordNotFound }},
		{"nil", false, func(*testing.T) error { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.make(t)
			if tc.want && err == nil {
				t.Fatal("no error was made")
			}
			if got := db.IsUnavailable(err); got != tc.want {
				t.Errorf("IsUnavailable(%v) [%T] = %v, want %v", err, err, got, tc.want)
			}
		})
	}
}

func openErr(t *testing.T, u string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := db.Open(ctx, u, 1)
	if err == nil {
		pool.Close()
		t.Fatalf("connected to %s", u)
	}
	return err
}

// sqlConn is one dedicated connection (database/sql does not retry on
// another one behind its back).
func sqlConn(t *testing.T, u string) *sql.Conn {
	t.Helper()
	pool, err := db.Open(context.Background(), u, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	conn, err := pool.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func withHost(t *testing.T, raw, host string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = host
	return u.String()
}

// limitedRole creates a login role (password "not used") that may hold no
// connection at all.
func limitedRole(t *testing.T, dbURL string) string {
	t.Helper()
	admin := sqlConn(t, dbURL)
	role := fmt.Sprintf("modshop_test_noconn_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(context.Background(), "CREATE ROLE "+role+" LOGIN PASSWORD 'not used' CONNECTION LIMIT 0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP ROLE "+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	return role
}

func pgState(code string) func(*testing.T) error {
	return func(*testing.T) error {
		return fmt.Errorf("some work: %w", &pgconn.PgError{Severity: "FATAL", Code: code, Message: "made by the test"})
	}
}
