package bus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"
)

// TestOverview_ShowsHandlersOfOtherProcesses: two buses on one database,
// each with its own handler on the same topic (two processes of a split
// shop): each one's overview shows both consumer groups and their lag.
func TestOverview_ShowsHandlersOfOtherProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	first, second := e.bus(Config{}), e.bus(Config{})
	Handle(first, "testmod.first", e.consumer(), record("testmod.first"))
	Handle(second, "testmod.second", e.consumer(), record("testmod.second"))
	for _, b := range []*Bus{first, second} {
		if err := b.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e.publish(first, ctx, "seen-by-both")
	e.waitFor("both handlers", func() bool { return e.effects("seen-by-both") == 2 })
	for name, b := range map[string]*Bus{"first": first, "second": second} {
		e.waitFor(name+"'s overview of both handlers", func() bool {
			stats, err := b.Overview(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lags := map[string]int64{}
			for _, ts := range stats {
				if ts.Topic == (thingHappened{}).EventName() {
					for _, c := range ts.Consumers {
						lags[c.Handler] = c.Lag
					}
				}
			}
			l1, ok1 := lags["testmod.first"]
			l2, ok2 := lags["testmod.second"]
			return ok1 && ok2 && l1 == 0 && l2 == 0
		})
	}
}

// TestReplay_AsksTheProcessThatRunsTheHandler: staff replay a dead letter
// through a process that does not run its handler (a split shop on one
// database): the process that does is asked, applies it, and the answer
// comes back — a failure again as a ReplayError, then success, once.
func TestReplay_AsksTheProcessThatRunsTheHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var broken atomic.Bool
	broken.Store(true)
	owner := e.bus(Config{MaxAttempts: 2})
	Handle(owner, "testmod.picky", e.consumer(), func(ctx context.Context, tx *gorm.DB, ev thingHappened) error {
		if broken.Load() {
			return errors.New("not yet")
		}
		return record("testmod.picky")(ctx, tx, ev)
	})
	if err := owner.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitForListener(t, e.admin)
	other := e.bus(Config{}) // staff's process: no handlers
	e.publish(owner, ctx, "picky")
	var letters []DeadLetter
	e.waitFor("the dead letter", func() bool {
		var err error
		letters, err = other.DeadLetters(ctx, false, 10)
		return err == nil && len(letters) == 1
	})
	var replayErr *ReplayError
	if _, err := other.Replay(ctx, letters[0].ID); !errors.As(err, &replayErr) || !strings.Contains(err.Error(), "not yet") {
		t.Fatalf("replay while still broken: %v, want the handler's error", err)
	}
	broken.Store(false)
	d, err := other.Replay(ctx, letters[0].ID)
	if err != nil || d.Resolution == nil || *d.Resolution != "replayed" {
		t.Fatalf("replay after the fix: %+v, %v", d, err)
	}
	if _, err := other.Replay(ctx, letters[0].ID); err != nil {
		t.Fatalf("replaying again: %v", err)
	}
	if n := e.effects("picky"); n != 1 {
		t.Fatalf("applied %d times, want 1", n)
	}
}
