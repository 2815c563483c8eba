package moduletest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/testkit"
)

// NewBus provisions the bus schema on the database at cfg.DatabaseURL
// (admin: a superuser pool on it), lets the module schemas publish, and
// returns a bus on it with registry; it closes when the test ends. Start
// it with StartBus once its handlers are subscribed.
func NewBus(tb testing.TB, admin *sql.DB, cfg bus.Config, registry *bus.Registry, moduleSchemas ...string) *bus.Bus {
	tb.Helper()
	ctx := context.Background()
	if err := bus.Provision(ctx, admin, moduleSchemas...); err != nil {
		tb.Fatalf("provision the bus: %v", err)
	}
	if cfg.Log == nil {
		cfg.Log = testkit.Logger()
	}
	b, err := bus.New(ctx, cfg, registry)
	if err != nil {
		tb.Fatalf("bus: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("close the bus: %v", err)
		}
	})
	return b
}

// StartBus starts b's subscribers.
func StartBus(tb testing.TB, b *bus.Bus) {
	tb.Helper()
	if err := b.Start(context.Background()); err != nil {
		tb.Fatalf("start the bus: %v", err)
	}
}

// Publish publishes events on b in a transaction of their own on admin (a
// superuser pool on the bus's database), as the module that owns them
// would in its own transaction.
func Publish(ctx context.Context, b *bus.Bus, admin *sql.DB, events ...bus.Event) error {
	g, err := db.Gorm(admin)
	if err != nil {
		return err
	}
	err = g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return b.Publish(ctx, tx, events...)
	})
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}
