package app_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
)

// TestConfig_TraceURLTemplateIsChecked: MODSHOP_TRACE_URL_TEMPLATE, the
// link from an order's trace id to the tracing UI, is refused at start
// unless it is an absolute http(s) URL holding {trace_id}; it is empty
// (no links) by default.
func TestConfig_TraceURLTemplateIsChecked(t *testing.T) {
	t.Parallel()
	for tmpl, says := range map[string]string{
		"http://localhost:16686/trace/":    "{trace_id}",
		"localhost:16686/trace/{trace_id}": "http",
		"ftp://example.com/{trace_id}":     "http",
	} {
		lookup := func(k string) (string, bool) {
			switch k {
			case "MODSHOP_TRACE_URL_TEMPLATE":
				return tmpl, true
			case "MODSHOP_DATABASE_URL":
				return "postgres://nobody@127.0.0.1:1/none?sslmode=disable", true
			}
			return "", false
		}
		err := app.Run(context.Background(), app.Env{Args: []string{"migrate"}, Stdout: io.Discard, Stderr: io.Discard, Lookup: lookup})
		if err == nil || !strings.Contains(err.Error(), "MODSHOP_TRACE_URL_TEMPLATE") || !strings.Contains(err.Error(), says) {
			t.Errorf("template %q: %v, want a refusal that names MODSHOP_TRACE_URL_TEMPLATE and says %s", tmpl, err, says)
		}
	}
	if c := app.DefaultConfig(); c.TraceURLTemplate != "" {
		t.Errorf("default template %q, want none", c.TraceURLTemplate)
	}
}
