package bus

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestInbox_TwoReplicasPruneTheSameInbox: every replica running a module
// prunes that module's inbox (hourly), with no lock between them: the
// deletes are idempotent. Two prunes of one inbox at once, each over more
// marks than a batch, both succeed and leave exactly the marks younger
// than the retention: a mark the other deleted first is skipped, not an
// error.
func TestInbox_TwoReplicasPruneTheSameInbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if err := e.mod.Exec(inboxDDL).Error; err != nil {
		t.Fatal(err)
	}
	err := e.mod.Exec(`INSERT INTO processed_messages (handler, message_id, processed_at)
		SELECT 'testmod.record', 'old-' || i, now() - interval '20 days' FROM generate_series(1, ?) AS i
		UNION ALL SELECT 'testmod.record', 'recent', now() - interval '1 day'`, inboxPruneBatch*3+10).Error
	if err != nil {
		t.Fatal(err)
	}
	cutoff := time.Now().Add(-14 * 24 * time.Hour)
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = pruneInbox(context.Background(), e.mod, cutoff)
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("prunes: %v, %v", errs[0], errs[1])
	}
	var ids []string
	if err := e.mod.Raw(`SELECT message_id FROM processed_messages`).Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "recent" {
		t.Fatalf("%d marks left (%.3v), want [recent]", len(ids), ids)
	}
}
