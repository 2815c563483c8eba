package bus_test

import (
	"flag"
	"testing"

	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/testkit/eventcontract"
)

var updateGolden = flag.Bool("update", false, "write testdata/*.json from the examples (a compatible change only)")

// TestBackfillRequested_MatchesItsGoldenFile pins the wire shape of the
// request every owner of a copied model answers.
func TestBackfillRequested_MatchesItsGoldenFile(t *testing.T) {
	eventcontract.Check(t, *updateGolden, bus.BackfillRequested{RequestID: "0195a1c2-7d3e-7f00-8a1b-2c3d4e5f6a7b",
		Source: "product", Requester: "order", After: "0195a1b9-aaaa-7bbb-8ccc-ddddeeeeffff"})
}
