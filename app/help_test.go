package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
)

// runHelp runs modshop with args and no environment, returning what it
// printed and whether it ended as a successful help (exit status 0).
func runHelp(t *testing.T, args ...string) (stdout string, ok bool) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := app.Run(context.Background(), app.Env{Args: args, Stdout: &out, Stderr: &errOut,
		Lookup: func(string) (string, bool) { return "", false }})
	if err != nil && !app.IsHelp(err) {
		t.Logf("modshop %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut.String())
		return out.String(), false
	}
	return out.String(), true
}

// Every command answers its own --help: its usage and its own flags, on
// standard output, with exit status 0, and nothing that belongs to another.
func TestHelp_EveryCommandAnswersItsOwn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		usage   string   // the first line names the command
		has     []string // its own flags and words
		hasNone []string // flags of other commands
	}{
		{[]string{"serve", "--help"}, "modshop [serve] [flags]", []string{"--http-addr", "--database-url", "--modules", "MODSHOP_HTTP_ADDR"}, []string{"--route", "--username", "--demo"}},
		{[]string{"gateway", "--help"}, "modshop gateway --route PREFIX=URL", []string{"--route", "--listen", "MODSHOP_GATEWAY_LISTEN", "--upstream-timeout"}, []string{"--database-url", "--username"}},
		{[]string{"migrate", "--help"}, "modshop migrate [flags]", []string{"--database-url", "--modules"}, []string{"--route", "--username", "--demo"}},
		{[]string{"users", "--help"}, "modshop users create", []string{"--username", "--email", "--admin"}, []string{"--route"}},
		{[]string{"users", "create", "--help"}, "modshop users create", []string{"--username", "--email", "--admin", "--database-url", "standard input"}, []string{"--route", "--demo"}},
		{[]string{"users", "create", "-h"}, "modshop users create", []string{"--username"}, []string{"--route"}},
		{[]string{"seed", "--help"}, "modshop seed --demo", []string{"--demo", "--database-url"}, []string{"--route", "--username"}},
		{[]string{"help", "seed"}, "modshop seed --demo", []string{"--demo"}, []string{"--route"}},
		{[]string{"help"}, "modshop: a shop", []string{"serve", "gateway", "migrate", "users create", "seed", "--http-addr", "--route"}, nil},
		{[]string{"--help"}, "modshop: a shop", []string{"serve", "gateway", "users create"}, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			out, ok := runHelp(t, tt.args...)
			if !ok {
				t.Fatalf("exit status is not 0; printed:\n%s", out)
			}
			first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
			if !strings.Contains(first, tt.usage) {
				t.Errorf("first line %q, want the usage %q; printed:\n%s", first, tt.usage, out)
			}
			for _, s := range tt.has {
				if !strings.Contains(out, s) {
					t.Errorf("help does not mention %q; printed:\n%s", s, out)
				}
			}
			for _, s := range tt.hasNone {
				if strings.Contains(out, s+" ") || strings.Contains(out, s+"\n") {
					t.Errorf("help mentions %q, which is another command's; printed:\n%s", s, out)
				}
			}
		})
	}
}

// A command given wrongly still fails (exit status 1) and says how to ask
// for help.
func TestHelp_WrongUseFailsAndPointsAtHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"users"}, {"users", "delete"}, {"serve", "--no-such-flag"}, {"no-such-command"}, {"help", "no-such-command"}} {
		var out, errOut bytes.Buffer
		err := app.Run(context.Background(), app.Env{Args: args, Stdout: &out, Stderr: &errOut,
			Lookup: func(string) (string, bool) { return "", false }})
		if err == nil || app.IsHelp(err) {
			t.Errorf("modshop %s: %v, want a failure", strings.Join(args, " "), err)
			continue
		}
		if !strings.Contains(err.Error(), "--help") && !strings.Contains(err.Error(), "modshop help") {
			t.Errorf("modshop %s: %q does not say how to get help", strings.Join(args, " "), err)
		}
	}
}
