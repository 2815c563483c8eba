package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/platform/db"
)

// sqlstateNoSuchDatabase is invalid_catalog_name: the URL names a database
// the server does not have.
const sqlstateNoSuchDatabase = "3D000"

// What CREATE DATABASE answers when another process creates the same
// database: duplicate_database (42P04) when the other creation had ended
// before this one began, unique_violation (23505, on pg_database's name
// index) when they overlapped, which is what processes starting together do.
const (
	sqlstateDuplicateDatabase = "42P04"
	sqlstateUniqueViolation   = "23505"
)

// openCreatingDatabase connects to url as db.Open does. When the database
// it names does not exist (a stock server has no "modshop" database), it
// creates it if the URL's user may (CREATEDB or superuser), and says so;
// otherwise its error gives the command that creates it.
func openCreatingDatabase(ctx context.Context, url string, maxConns int, log *slog.Logger) (*sql.DB, error) {
	pool, err := db.Open(ctx, url, maxConns)
	if err == nil || db.SQLState(err) != sqlstateNoSuchDatabase {
		return pool, err
	}
	if cerr := createDatabase(ctx, url, log); cerr != nil {
		// Whatever kept us from creating it, another process starting at
		// the same moment may have: then the database is there now.
		if pool, err := db.Open(ctx, url, maxConns); err == nil {
			return pool, nil
		}
		return nil, cerr
	}
	return db.Open(ctx, url, maxConns)
}

// createDatabase creates the database url names, connecting with the same
// credentials to the server's maintenance database.
func createDatabase(ctx context.Context, url string, log *slog.Logger) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("parse database url: %w", err)
	}
	name, user := cfg.Database, cfg.User
	where := cfg.Host + ":" + strconv.Itoa(int(cfg.Port))
	howTo := func(why string) error {
		return fmt.Errorf("database %q does not exist on %s, and %s. Create it as a user who may "+
			"(here as postgres), then start again:\n"+
			"  createdb -h %s -p %d -U postgres -O %s %s\n"+
			"or in psql: CREATE DATABASE %s OWNER %s;",
			name, where, why, cfg.Host, cfg.Port, user, name,
			pgx.Identifier{name}.Sanitize(), pgx.Identifier{user}.Sanitize())
	}

	conn, err := connectMaintenance(ctx, cfg)
	if err != nil {
		return howTo(fmt.Sprintf("user %q cannot connect to the server's postgres database to create it (%v)", user, err))
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var may bool
	err = conn.QueryRow(ctx, `SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&may)
	if err != nil {
		return fmt.Errorf("database %q does not exist on %s; see whether user %q may create it: %w", name, where, user, err)
	}
	if !may {
		return howTo(fmt.Sprintf("user %q may not create databases (it has neither CREATEDB nor superuser)", user))
	}
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	switch state := db.SQLState(err); {
	case state == sqlstateDuplicateDatabase || state == sqlstateUniqueViolation:
		return nil // another process created it meanwhile
	case err != nil:
		return fmt.Errorf("create database %q on %s: %w", name, where, err)
	}
	log.Info("created database, which did not exist", "database", name, "server", where, "owner", user)
	return nil
}

// connectMaintenance connects as cfg's user to the server's maintenance
// database: postgres, or template1 where postgres was dropped.
func connectMaintenance(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var errs []error
	for _, maintenance := range []string{"postgres", "template1"} {
		c := cfg.Copy()
		c.Database = maintenance
		conn, err := pgx.ConnectConfig(ctx, c)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if db.SQLState(err) != sqlstateNoSuchDatabase {
			break
		}
	}
	return nil, errors.Join(errs...)
}
