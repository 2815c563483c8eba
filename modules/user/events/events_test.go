package events_test

import (
	"flag"
	"testing"
	"time"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/testkit/eventcontract"
)

var update = flag.Bool("update", false, "write testdata/*.json from the examples (a compatible change only)")

// TestEvents_MatchTheirGoldenFiles pins the event's wire shape to
// testdata/<event name>.json.
func TestEvents_MatchTheirGoldenFiles(t *testing.T) {
	eventcontract.Check(t, *update,
		events.UserRegistered{UserID: "0195a1c0-1111-7222-8333-444455556666", Username: "ada", DisplayName: "Ada Lovelace",
			Roles: []string{"customer"}, RegisteredAt: time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.UTC)},
		events.UserUpdated{UserID: "0195a1c0-1111-7222-8333-444455556666", Username: "ada", DisplayName: "Ada King",
			Roles: []string{"customer"}, Suspended: true, UpdatedAt: time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)},
		events.UsersBackfilled{RequestID: "0195a1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b", Last: true, Users: []events.UserState{
			{UserID: "0195a1c0-1111-7222-8333-444455556666", Username: "ada", DisplayName: "Ada King", UpdatedAt: time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)}}},
	)
}
