// Package db owns connections to PostgreSQL: the administrative pool that
// provisions one schema and one role per module, the per-module pools whose
// every connection acts as that module's role, and the migrations that
// each module applies to its own schema.
package db

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

var identifier = regexp.MustCompile(`^[a-z][a-z0-9_]{0,40}$`)

// RoleFor is the PostgreSQL role a module's schema belongs to.
func RoleFor(schema string) string { return "modshop_" + schema }

// Open connects to url with a small pool of database/sql connections that
// act as the connecting user. It is for provisioning and health checks.
func Open(ctx context.Context, url string, maxConns int) (*sql.DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns, err = poolSize(maxConns); err != nil {
		return nil, err
	}
	return openPool(ctx, cfg)
}

// poolSize is maxConns as pgxpool counts connections (an int32).
func poolSize(maxConns int) (int32, error) {
	if maxConns < 1 || maxConns > math.MaxInt32 {
		return 0, fmt.Errorf("a pool of %d connections: the size must be from 1 to %d", maxConns, math.MaxInt32)
	}
	return int32(maxConns), nil
}

// An Option changes how OpenModule connects.
type Option func(*pgxpool.Config)

// StatementTimeout bounds every statement on the pool's connections at d:
// PostgreSQL's statement_timeout, sent in each connection's startup
// message, so it costs no statement when a connection is used. A
// statement that runs longer is cancelled by the server (SQLSTATE 57014,
// which IsUnavailable reports) and the connection stays usable. A
// transaction that must not be bounded lifts it for itself with
// LiftStatementTimeout. Zero leaves the server's own setting.
func StatementTimeout(d time.Duration) Option {
	return func(cfg *pgxpool.Config) {
		if d <= 0 {
			return
		}
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(max(d.Milliseconds(), 1), 10)
	}
}

// LiftStatementTimeout, run first in a transaction on a pool opened with
// StatementTimeout, lets that transaction's statements take as long as
// they need (bus handlers, which are not bounded).
const LiftStatementTimeout = "SET LOCAL statement_timeout = 0"

// OpenModule connects to url with a pool whose every connection runs as
// the module's role with the module's schema first on its search path, so
// the database itself enforces the module wall. Each statement made inside
// a span is a span of its own, with the role (TraceStatements).
func OpenModule(ctx context.Context, url, schema string, maxConns int, opts ...Option) (*sql.DB, error) {
	if !identifier.MatchString(schema) {
		return nil, fmt.Errorf("invalid schema name %q", schema)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns, err = poolSize(maxConns); err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["application_name"] = "modshop-" + schema
	role := RoleFor(schema)
	cfg.ConnConfig.Tracer = newStatementTracer(cfg.ConnConfig.Database, role)
	for _, o := range opts {
		o(cfg)
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SET ROLE "+pgx.Identifier{role}.Sanitize())
		if err != nil {
			return fmt.Errorf("act as role %s: %w", role, err)
		}
		return nil
	}
	return openPool(ctx, cfg)
}

func openPool(ctx context.Context, cfg *pgxpool.Config) (*sql.DB, error) {
	cfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(pool)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to database %s@%s:%d/%s: %w",
			cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return sqlDB, nil
}

// Where names the database url connects to, as "user@host:port/database",
// for log lines (never an answer): no password. "" when url does not parse.
func Where(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Gorm wraps a database/sql pool in gorm, with gorm's own logging off (we
// log at the edges) and transactions only where the code asks for them.
// Its transactions are *Tx, which can run functions after they commit
// (AfterCommitter).
func Gorm(sqlDB *sql.DB) (*gorm.DB, error) {
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: pool{sqlDB}}), &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		TranslateError:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	return g, nil
}
