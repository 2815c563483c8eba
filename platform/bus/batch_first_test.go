package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	wmsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"gorm.io/gorm"
)

// The first message of a batch transaction enters its savepoint and the
// module's role in a round trip of its own; a handler whose first
// statement writes then sends its mark pipelined with that statement, and
// one whose first statement reads is looked up on entering and marked
// after it has run (batch.go). These tests cover both at the start of a
// batch, where the rest of the batch_test.go cases put a later message.

// TestBatch_AFirstMessageFoundInTheInboxAppliesNothing: the message is
// marked applied already when its batch reads it (the write-first
// handler's pipelined mark finds the mark, the read-first handler's
// lookup does): its effect is rolled back and the next message flows.
func TestBatch_AFirstMessageFoundInTheInboxAppliesNothing(t *testing.T) {
	t.Parallel()
	for _, first := range []string{"write", "read"} {
		t.Run(first+"-first", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			b := e.bus(Config{})
			ctx := context.Background()
			Handle(b, "testmod.first", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
				if first == "read" {
					var n int64
					if err := tx.Raw(`SELECT count(*) FROM effects WHERE key = ?`, ev.Key).Scan(&n).Error; err != nil {
						return err
					}
				}
				return record("testmod.first")(ctx, tx, ev)
			})
			if err := b.Start(ctx); err != nil {
				t.Fatal(err)
			}
			msg, err := newMessage(ctx, thingHappened{Key: "applied"}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.mod.Exec(`INSERT INTO processed_messages (handler, message_id) VALUES (?, ?)`, "testmod.first", msg.UUID).Error; err != nil {
				t.Fatal(err)
			}
			// Written without a wake-up: the next publish's wake-up reads
			// both, this one first.
			err = e.mod.Transaction(func(tx *gorm.DB) error {
				sqlTx, _ := txOf(tx)
				pub, err := wmsql.NewPublisher(wmsql.TxFromStdSQL(sqlTx), wmsql.PublisherConfig{SchemaAdapter: b.schemaAdapter()}, nil)
				if err != nil {
					return err
				}
				return pub.Publish(thingHappened{}.EventName(), msg)
			})
			if err != nil {
				t.Fatal(err)
			}
			e.publish(b, ctx, "after")
			e.waitFor("the message after", func() bool { return e.effects("after") == 1 })
			if n := e.effects("applied"); n != 0 {
				t.Fatalf("a message found in the inbox was applied %d times more", n)
			}
		})
	}
}

// TestBatch_AFirstMessageMarkedMeanwhileIsRolledBack: a read-first
// handler's message is marked after it has run; when another delivery
// (a replay racing the subscriber) has marked it meanwhile, that one won
// and this one's effect is rolled back.
func TestBatch_AFirstMessageMarkedMeanwhileIsRolledBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	b := e.bus(Config{})
	ctx := context.Background()
	Handle(b, "testmod.race", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		var n int64
		if err := tx.Raw(`SELECT count(*) FROM effects WHERE key = ?`, ev.Key).Scan(&n).Error; err != nil {
			return err
		}
		if ev.Key == "raced" {
			md, ok := MessageMetadata(ctx)
			if !ok {
				return errors.New("no metadata")
			}
			// The racing delivery commits its mark on a connection of its own.
			if err := e.mod.Exec(`INSERT INTO processed_messages (handler, message_id) VALUES (?, ?)`, "testmod.race", md.MessageID).Error; err != nil {
				return err
			}
		}
		return record("testmod.race")(ctx, tx, ev)
	})
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e.publish(b, ctx, "raced")
	e.publish(b, ctx, "after")
	e.waitFor("the message after", func() bool { return e.effects("after") == 1 })
	if n := e.effects("raced"); n != 0 {
		t.Fatalf("a message that another delivery marked while its handler ran was applied here too (%d)", n)
	}
}
