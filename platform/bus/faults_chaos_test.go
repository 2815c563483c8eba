//go:build chaos

package bus

import (
	"context"
	"testing"
	"time"
)

// The chaos build's fault hook (go test -tags chaos ./platform/bus/, run
// by make chaos): its faults are what the suite says they are.
func TestInjectFault_TransientFaultsAreTransientAndLastTheirRuns(t *testing.T) {
	t.Setenv("MODSHOP_CHAOS_TRANSIENT", "1")
	t.Setenv("MODSHOP_CHAOS_TRANSIENT_RUNS", "3")
	t.Setenv("MODSHOP_CHAOS_SLOW", "h.slow=30ms")
	settings, err := chaosFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	chaosOnce.Do(func() {}) // the settings below, not the environment's at first use
	chaosConfig = settings

	for run := 1; run <= 3; run++ {
		err := injectFault(context.Background(), "h", "m1")
		if err == nil || !IsTransient(err) {
			t.Fatalf("run %d: %v, want a transient failure", run, err)
		}
	}
	if err := injectFault(context.Background(), "h", "m1"); err != nil {
		t.Fatalf("run 4: %v, want the message's faults over after 3 runs", err)
	}
	began := time.Now()
	_ = injectFault(context.Background(), "h.slow", "m1")
	if d := time.Since(began); d < 30*time.Millisecond {
		t.Errorf("slowed handler took %s, want at least 30ms", d)
	}
}

func TestChaosFromEnv_RefusesWhatItCannotRead(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"MODSHOP_CHAOS_TRANSIENT", "ten percent"},
		{"MODSHOP_CHAOS_PANIC", "1.5"},
		{"MODSHOP_CHAOS_TRANSIENT_RUNS", "0"},
		{"MODSHOP_CHAOS_SLOW", "payment.charge"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(c.name, c.value)
			if _, err := chaosFromEnv(); err == nil {
				t.Errorf("%s=%q accepted", c.name, c.value)
			}
		})
	}
}
