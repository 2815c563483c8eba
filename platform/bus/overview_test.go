package bus

import (
	"context"
	"testing"
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
