package db

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Migrate applies a module's migrations (SQL files in fsys) to its schema.
// It must run on the module's own pool, so the tables it creates belong to
// the module's role. Each module keeps its own version table in its own
// schema; a session advisory lock keeps two processes from migrating at once.
func Migrate(ctx context.Context, moduleDB *sql.DB, schema string, fsys fs.FS, log *slog.Logger) error {
	p, err := provider(moduleDB, schema, fsys)
	if err != nil {
		return err
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate schema %s: %w", schema, err)
	}
	for _, r := range results {
		log.Info("migration applied", "schema", schema, "version", r.Source.Version, "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Pending reports whether a module's schema lacks any of its migrations.
func Pending(ctx context.Context, moduleDB *sql.DB, schema string, fsys fs.FS) (bool, error) {
	p, err := provider(moduleDB, schema, fsys)
	if err != nil {
		return false, err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return false, fmt.Errorf("migration status of schema %s: %w", schema, err)
	}
	return current < target, nil
}

func provider(moduleDB *sql.DB, schema string, fsys fs.FS) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, moduleDB, fsys,
		goose.WithTableName(schema+".goose_db_version"),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations of schema %s: %w", schema, err)
	}
	return p, nil
}
