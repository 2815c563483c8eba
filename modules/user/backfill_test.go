package user_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit"
)

// TestBackfill_TheAccountsInPagesEachOnceWithoutAnEmailAddress: asked for
// a backfill of "user", the user module publishes every account in pages
// of bus.BackfillPageSize, each account once with its display name and
// version, only the final page marked last, and no page carries an e-mail
// address (the user events never do); a request for another module is
// none of its business.
func TestBackfill_TheAccountsInPagesEachOnceWithoutAnEmailAddress(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	const n = 2*bus.BackfillPageSize + 7
	if _, err := db.Exec(`INSERT INTO users.users (username, email, password_hash, display_name, updated_at)
		SELECT 'bf_' || i, 'bf' || i || '@example.com', 'x', 'Backfilled ' || i, now() - make_interval(secs => i)
		FROM generate_series(1, $1) AS i`, n); err != nil {
		t.Fatal(err)
	}
	var accounts int
	if err := db.QueryRow(`SELECT count(*) FROM users.users`).Scan(&accounts); err != nil {
		t.Fatal(err)
	}
	other, req := uuid.NewString(), uuid.NewString()
	if err := shop.Publish(context.Background(), bus.BackfillRequested{RequestID: other, Source: "product", Requester: "order"},
		bus.BackfillRequested{RequestID: req, Source: "user", Requester: "order"}); err != nil {
		t.Fatal(err)
	}
	var pages []events.UsersBackfilled
	var raws []string
	testkit.Eventually(t, "the last page", func() bool {
		rows, err := db.Query(`SELECT payload::text FROM bus."m_` + events.UsersBackfilledV1 + `" ORDER BY "offset"`)
		if err != nil {
			return false // the topic's table comes with the first page
		}
		defer rows.Close()
		pages, raws = nil, nil
		for rows.Next() {
			var raw string
			var p events.UsersBackfilled
			if err := rows.Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				t.Fatal(err)
			}
			pages, raws = append(pages, p), append(raws, raw)
		}
		return len(pages) > 0 && pages[len(pages)-1].Last
	})
	seen := map[string]bool{}
	var sizes []int
	for i, p := range pages {
		if p.RequestID != req {
			t.Errorf("page %d answers request %s, want only %s (the other asked the product module)", i, p.RequestID, req)
		}
		if p.Last != (i == len(pages)-1) {
			t.Errorf("page %d of %d: last = %v", i+1, len(pages), p.Last)
		}
		if strings.Contains(raws[i], "@example.com") || strings.Contains(raws[i], "email") {
			t.Errorf("page %d carries an e-mail address: %.200s", i+1, raws[i])
		}
		sizes = append(sizes, len(p.Users))
		for _, u := range p.Users {
			if seen[u.UserID] {
				t.Errorf("account %s in two pages", u.UserID)
			}
			seen[u.UserID] = true
			if u.Username == "" || u.UpdatedAt.IsZero() || (strings.HasPrefix(u.Username, "bf_") && !strings.HasPrefix(u.DisplayName, "Backfilled ")) {
				t.Errorf("a page carries %+v", u)
			}
		}
	}
	if len(seen) != accounts || len(pages) != (accounts+bus.BackfillPageSize-1)/bus.BackfillPageSize || sizes[0] != bus.BackfillPageSize {
		t.Errorf("pages of %v accounts, %d distinct; want all %d accounts in pages of %d", sizes, len(seen), accounts, bus.BackfillPageSize)
	}
}
