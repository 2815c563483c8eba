package chaos

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// chaosSymbol starts the name of every function and variable that only the
// chaos build has (platform/bus/faults_chaos.go).
const chaosSymbol = "github.com/modshop/modshop/platform/bus.chaos"

// TestReleaseBinaryHasNoFaultHook builds the shop as `make build` does
// (scripts/build) and checks that it carries none of the chaos build's
// fault injection: neither its code nor its settings. The same checks
// against the chaos build must find both, or they prove nothing.
func TestReleaseBinaryHasNoFaultHook(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the shop twice")
	}
	t.Parallel() // building while TestChaos waits on its load
	dir := t.TempDir()
	release := filepath.Join(dir, "modshop")
	cmd := exec.Command("./scripts/build", release)
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/build: %v\n%s", err, out)
	}
	chaos := buildShop(t, t.TempDir(), "chaos")

	if syms := chaosSymbols(t, release); len(syms) > 0 {
		t.Errorf("the release build has the chaos build's symbols: %v", syms)
	}
	if hasSetting(t, release) {
		t.Errorf("the release build reads MODSHOP_CHAOS_* settings")
	}
	if syms := chaosSymbols(t, chaos); len(syms) == 0 {
		t.Errorf("the chaos build lacks its symbols (%s*): the check above cannot fail", chaosSymbol)
	}
	if !hasSetting(t, chaos) {
		t.Errorf("the chaos build lacks its settings: the check above cannot fail")
	}
}

// chaosSymbols lists the binary's symbols that belong to the chaos build.
func chaosSymbols(t *testing.T, bin string) []string {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("read %s: %v", bin, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil { // a stripped binary would pass the check unseen
		t.Fatalf("symbols of %s: %v", bin, err)
	}
	var found []string
	for _, s := range syms {
		if strings.HasPrefix(s.Name, chaosSymbol) {
			found = append(found, s.Name)
		}
	}
	return found
}

// hasSetting reports whether the binary holds the name of a chaos setting.
func hasSetting(t *testing.T, bin string) bool {
	t.Helper()
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(raw, []byte("MODSHOP_CHAOS_"))
}
