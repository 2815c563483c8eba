package chaos

import (
	"os"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) {
	// As root, the embedded PostgreSQL is started by re-executing this
	// binary as an unprivileged user; under -race each such child would
	// otherwise sleep a second on exit.
	if os.Getenv("GORACE") == "" {
		_ = os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	testkit.Main(m) // runs the re-executed pgembed child when this is one
}
