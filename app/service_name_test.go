package app

import (
	"testing"

	"github.com/modshop/modshop/platform/config"
)

// A process names itself after the modules it runs, in the order
// --modules gives them; all of them is the shop, "modshop".
func TestServiceName_NamesTheModulesInTheOrderGiven(t *testing.T) {
	t.Parallel()
	mods := Modules(DefaultConfig())
	for spec, want := range map[string]string{
		"all":                        "modshop",
		" all ":                      "modshop",
		"user,product,order,payment": "modshop",
		"payment,order,user,product": "modshop",
		"order,payment":              "modshop-order+payment",
		"payment, order":             "modshop-payment+order",
		"product":                    "modshop-product",
		"order,order":                "modshop-order",
	} {
		if got := serviceName(spec, mods); got != want {
			t.Errorf("serviceName(%q) = %q, want %q", spec, got, want)
		}
	}
}

// MODSHOP_TRACE_STATEMENTS reaches the configuration; statement spans are
// on by default.
func TestConfig_TraceStatementsSetting(t *testing.T) {
	t.Parallel()
	if !DefaultConfig().TraceStatements {
		t.Error("statement spans are off by default")
	}
	for value, want := range map[string]bool{"false": false, "true": true, "0": false} {
		lookup := func(k string) (string, bool) {
			if k == "MODSHOP_TRACE_STATEMENTS" {
				return value, true
			}
			return "", false
		}
		s := config.NewSet("serve", lookup)
		var c Config
		bindConfig(s, &c)
		if err := s.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if c.TraceStatements != want {
			t.Errorf("MODSHOP_TRACE_STATEMENTS=%s: TraceStatements = %v, want %v", value, c.TraceStatements, want)
		}
	}
}
