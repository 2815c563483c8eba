package testkit

import (
	"testing"
	"time"
)

// Patience is how long Eventually waits: far longer than anything a test
// waits for takes on a loaded machine, so that a slow run is never a
// failure; only what never happens is.
const Patience = 30 * time.Second

// Eventually polls cond until it holds, and fails the test, saying what it
// waited for, if it still does not after Patience. It asserts nothing
// about how long things take.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s; it did not happen", Patience, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
