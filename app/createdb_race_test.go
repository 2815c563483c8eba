package app

import (
	"context"
	"crypto/rand"
	"database/sql"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/modshop/modshop/platform/testkit"
)

// Processes that start at once on a server without their database all try
// to create it; PostgreSQL answers the losers 23505 (unique violation on
// pg_database's name) rather than 42P04 when the creations overlap. Every
// one of them must start.
func TestCreatedb_ProcessesStartingAtOnceAllGetTheNewDatabase(t *testing.T) {
	t.Parallel()
	server, err := testkit.ServerURL()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })
	u, err := url.Parse(server)
	if err != nil {
		t.Fatal(err)
	}

	const starts, rounds = 6, 3
	for range rounds { // one race can be lost by luck; three rarely are
		name := "modshop_race_" + strings.ToLower(rand.Text()[:10])
		t.Cleanup(func() {
			if _, err := admin.Exec(`DROP DATABASE IF EXISTS ` + pgx.Identifier{name}.Sanitize() + ` WITH (FORCE)`); err != nil {
				t.Errorf("drop %s: %v", name, err)
			}
		})
		u.Path = "/" + name
		dbURL := u.String()
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range starts {
			wg.Go(func() {
				<-start
				pool, err := openCreatingDatabase(context.Background(), dbURL, 1, slog.New(slog.DiscardHandler))
				if err != nil {
					t.Errorf("start %d of %d at once on missing database %s: %v", i+1, starts, name, err)
					return
				}
				if err := pool.Ping(); err != nil {
					t.Errorf("start %d: ping: %v", i+1, err)
				}
				_ = pool.Close()
			})
		}
		close(start)
		wg.Wait()
	}
}
