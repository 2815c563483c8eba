package bus

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// A module's pool may bound its statements for the sake of its HTTP
// requests (db.StatementTimeout); its handlers are not bounded by it. A
// handler whose statement runs four times that timeout succeeds at its
// one attempt, in the batch and in a transaction of its own on the
// module's pool.
func TestHandle_NotBoundedByTheModulePoolsStatementTimeout(t *testing.T) {
	bothModes(t, func(t *testing.T) {
		e := newEnv(t)
		ctx := context.Background()
		pool, err := db.OpenModule(ctx, e.url, "testmod", 4, db.StatementTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		bounded, err := db.Gorm(pool)
		if err != nil {
			t.Fatal(err)
		}
		if err := bounded.Exec(`SELECT pg_sleep(0.2)`).Error; db.SQLState(err) != "57014" {
			t.Fatalf("the pool's own statements: %v, want a statement timeout", err)
		}
		b := e.bus(Config{MaxAttempts: 1})
		Handle(b, "testmod.slow", Consumer{Module: "testmod", DB: bounded}, func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
			if err := tx.Exec(`SELECT pg_sleep(0.2)`).Error; err != nil {
				return err
			}
			return tx.Exec(`INSERT INTO effects (key, handler) VALUES (?, 'slow')`, ev.Key).Error
		})
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
		e.publish(b, ctx, "slow-1")
		e.waitFor("the slow handler's effect or a dead letter", func() bool {
			dl, _ := b.DeadLetters(ctx, true, 10)
			if len(dl) > 0 {
				t.Fatalf("the slow handler was dead-lettered: %s", dl[0].Error)
			}
			return e.effects("slow-1") == 1
		})
	})
}
