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
		bounded := e.boundedModulePool(4)
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

// The inbox is created at start on the module's pool, which may bound its
// statements for HTTP requests; creating it is not bounded by that (it
// failed when the DDL waited longer than the pool's statement timeout).
func TestInbox_CreatedOutsideTheModulePoolsStatementTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	bounded := e.boundedModulePool(2)
	// A schema being dropped (and then not) holds back every creation in
	// it: the DDL waits longer than the pool's timeout.
	tx, err := e.admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA testmod CASCADE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ensureInbox(ctx, bounded) }()
	time.Sleep(300 * time.Millisecond) // longer than the timeout: the DDL waits on the lock
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("creating the inbox: %v", err)
	}
	if err := e.mod.Exec(`SELECT count(*) FROM processed_messages`).Error; err != nil {
		t.Fatalf("the inbox is not there: %v", err)
	}
}

// boundedModulePool is a pool of the module's role whose statements are
// bounded to 50 ms, as the shop bounds its HTTP requests' statements.
func (e *env) boundedModulePool(conns int) *gorm.DB {
	e.t.Helper()
	pool, err := db.OpenModule(context.Background(), e.url, "testmod", conns, db.StatementTimeout(50*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { pool.Close() })
	bounded, err := db.Gorm(pool)
	if err != nil {
		e.t.Fatal(err)
	}
	return bounded
}
