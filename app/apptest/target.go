package apptest

import (
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

// Target is a running shop as an end-to-end suite sees it, whatever its
// topology: one process (Shop), or one process per module behind a
// gateway (Split). The same suite runs against each.
type Target interface {
	// Client is an API client for tb that checks every response against
	// the whole shop's OpenAPI document.
	Client(tb testing.TB) *testkit.API
	// Admin returns an admin's user id and session token.
	Admin(tb testing.TB) (id, token string)
	// Customer registers a new customer and returns its id and token.
	Customer(tb testing.TB) (id, token string)
	// CheckInvariants waits until the shop has settled and checks
	// docs/design.md's invariants across every module's data.
	CheckInvariants(tb testing.TB)
}

var (
	_ Target = (*Shop)(nil)
	_ Target = (*Split)(nil)
)

// Client is an API client for tb on this shop.
func (s *Shop) Client(tb testing.TB) *testkit.API {
	return testkit.NewAPI(tb, s.URL, s.OpenAPI())
}
