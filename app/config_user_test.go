package app_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
)

func TestConfig_HashingAndRegistrationSettingsAreChecked(t *testing.T) {
	t.Parallel()
	for env, value := range map[string]string{
		"MODSHOP_PASSWORD_HASHES":              "-1",
		"MODSHOP_PASSWORD_HASH_WAIT":           "0s",
		"MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT": "0",
		"MODSHOP_REGISTER_THROTTLE_WINDOW":     "10ms",
	} {
		lookup := func(k string) (string, bool) {
			switch k {
			case env:
				return value, true
			case "MODSHOP_DATABASE_URL":
				return "postgres://nobody@127.0.0.1:1/none?sslmode=disable", true
			}
			return "", false
		}
		err := app.Run(context.Background(), app.Env{Args: []string{"migrate"}, Stdout: io.Discard, Stderr: io.Discard, Lookup: lookup})
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=%s: %v, want a refusal that names the setting", env, value, err)
		}
	}
	if c := app.DefaultConfig(); c.PasswordHashes != 0 || c.RegisterPerClient < 1 || c.PasswordHashWait <= 0 {
		t.Errorf("defaults: hashes %d (0: sized from memory), registrations per client %d, wait %v",
			c.PasswordHashes, c.RegisterPerClient, c.PasswordHashWait)
	}
}
