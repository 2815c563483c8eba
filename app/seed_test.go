package app_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/platform/testkit"
)

// TestSeed_DemoTwiceAddsTheCatalogOnce: `modshop seed --demo` loads the
// demo catalog and says what it added; run again, it adds nothing and says
// so. The catalog itself is the product module's test
// (TestSeedDemo_TwiceAddsTheCatalogOnce in modules/product).
func TestSeed_DemoTwiceAddsTheCatalogOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{"MODSHOP_DATABASE_URL": testkit.NewDatabase(t), "MODSHOP_LOG_LEVEL": "warn"}
	seed := func() string {
		t.Helper()
		var out bytes.Buffer
		err := app.Run(context.Background(), app.Env{Args: []string{"seed", "--demo"}, Stdin: strings.NewReader(""), Stdout: &out, Stderr: io.Discard,
			Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if err != nil {
			t.Fatalf("seed --demo: %v", err)
		}
		return out.String()
	}
	if out := seed(); !strings.Contains(out, "8 categories and 52 products added") {
		t.Fatalf("first seed printed %q, want 8 categories and 52 products added", out)
	}
	if out := seed(); !strings.Contains(out, "0 categories and 0 products added") {
		t.Errorf("second seed printed %q, want 0 categories and 0 products added", out)
	}
}
