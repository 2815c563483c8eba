package app_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
)

// TestConfig_ShippingMethodsAreCheckedAtStart: a MODSHOP_SHIPPING_METHODS
// that is not a list of code=label:price is refused at start, naming the
// setting and the entry; by default the shop delivers standard and express.
func TestConfig_ShippingMethodsAreCheckedAtStart(t *testing.T) {
	t.Parallel()
	for spec, says := range map[string]string{
		"standard=Standard delivery":          "code=label:price",
		"standard=Standard delivery:4.9":      "price",
		"pickup=Collect:0.00":                 "built in",
		"standard=A:1.00,standard=B:2.00":     "twice",
		"Express=Express delivery:9.90":       "code",
		"standard=Standard\tdelivery:4.90":    "label",
		"standard=Standard delivery:-4.90":    "price",
		"standard=Standard delivery:4.90,,":   "code=label:price",
		"standard=Standard delivery:4.90:1.0": "price",
	} {
		lookup := func(k string) (string, bool) {
			switch k {
			case "MODSHOP_SHIPPING_METHODS":
				return spec, true
			case "MODSHOP_DATABASE_URL":
				return "postgres://nobody@127.0.0.1:1/none?sslmode=disable", true
			}
			return "", false
		}
		err := app.Run(context.Background(), app.Env{Args: []string{"migrate"}, Stdout: io.Discard, Stderr: io.Discard, Lookup: lookup})
		if err == nil || !strings.Contains(err.Error(), "MODSHOP_SHIPPING_METHODS") || !strings.Contains(err.Error(), says) {
			t.Errorf("%q: %v, want a refusal that names MODSHOP_SHIPPING_METHODS and says %s", spec, err, says)
		}
	}
	if c := app.DefaultConfig(); !strings.Contains(c.ShippingMethods, "standard=") || !strings.Contains(c.ShippingMethods, "express=") {
		t.Errorf("default shipping methods %q, want standard and express", c.ShippingMethods)
	}
}
