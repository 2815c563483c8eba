package app_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modshop/modshop/app"
)

// TestConfig_PaymentProviderTimeoutIsChecked: the provider timeout (which
// sets the payment claim's lease) is bounded, and must exceed the test
// provider's delay, or every pm_card_delayed payment would time out.
func TestConfig_PaymentProviderTimeoutIsChecked(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ timeout, delay, named string }{
		{"10ms", "1ms", "MODSHOP_PAYMENT_PROVIDER_TIMEOUT"},
		{"1h", "1ms", "MODSHOP_PAYMENT_PROVIDER_TIMEOUT"},
		{"2s", "2s", "MODSHOP_PAYMENT_TEST_DELAY"},
	} {
		lookup := func(k string) (string, bool) {
			switch k {
			case "MODSHOP_PAYMENT_PROVIDER_TIMEOUT":
				return c.timeout, true
			case "MODSHOP_PAYMENT_TEST_DELAY":
				return c.delay, true
			case "MODSHOP_DATABASE_URL":
				return "postgres://nobody@127.0.0.1:1/none?sslmode=disable", true
			}
			return "", false
		}
		err := app.Run(context.Background(), app.Env{Args: []string{"migrate"}, Stdout: io.Discard, Stderr: io.Discard, Lookup: lookup})
		if err == nil || !strings.Contains(err.Error(), c.named) {
			t.Errorf("provider timeout %s, test delay %s: %v, want a refusal that names %s", c.timeout, c.delay, err, c.named)
		}
	}
	if c := app.DefaultConfig(); c.PaymentProviderTimeout != 10*time.Second || c.PaymentTestDelay >= c.PaymentProviderTimeout {
		t.Errorf("defaults: provider timeout %s, test delay %s", c.PaymentProviderTimeout, c.PaymentTestDelay)
	}
}
