package config

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

type settings struct {
	Addr    string
	Conns   int
	Secure  bool
	Timeout time.Duration
}

// newSet binds one setting of each kind, reading the environment from env.
func newSet(env map[string]string) (*Set, *settings) {
	s := NewSet("serve", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	s.FS.SetOutput(io.Discard)
	var c settings
	s.String(&c.Addr, "http-addr", "MODSHOP_HTTP_ADDR", ":8080", "listen address")
	s.Int(&c.Conns, "db-max-conns", "MODSHOP_DB_MAX_CONNS", 10, "connections")
	s.Bool(&c.Secure, "secure-cookies", "MODSHOP_SECURE_COOKIES", false, "Secure cookies")
	s.Duration(&c.Timeout, "shutdown-timeout", "MODSHOP_SHUTDOWN_TIMEOUT", 20*time.Second, "drain time")
	return s, &c
}

func TestSet_FlagBeatsEnvironmentBeatsDefault(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"MODSHOP_HTTP_ADDR": ":9000", "MODSHOP_DB_MAX_CONNS": " 4 ",
		"MODSHOP_SECURE_COOKIES": "true", "MODSHOP_SHUTDOWN_TIMEOUT": "5s",
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want settings
	}{
		{"defaults", nil, nil, settings{":8080", 10, false, 20 * time.Second}},
		{"environment", env, nil, settings{":9000", 4, true, 5 * time.Second}},
		{"flags over environment", env,
			[]string{"--http-addr", ":7000", "--db-max-conns=2", "--secure-cookies=false", "--shutdown-timeout", "1m"},
			settings{":7000", 2, false, time.Minute}},
		{"one flag, the rest from the environment", env, []string{"-db-max-conns", "8"}, settings{":9000", 8, true, 5 * time.Second}},
		{"empty variable is an empty string", map[string]string{"MODSHOP_HTTP_ADDR": ""}, nil, settings{"", 10, false, 20 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, got := newSet(tt.env)
			if err := s.Parse(tt.args); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *got != tt.want {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestSet_UnreadableEnvironmentIsReported(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ env, wantInError string }{
		"MODSHOP_DB_MAX_CONNS":     {"ten", `MODSHOP_DB_MAX_CONNS="ten": not a whole number`},
		"MODSHOP_SECURE_COOKIES":   {"yes please", `MODSHOP_SECURE_COOKIES="yes please": not true or false`},
		"MODSHOP_SHUTDOWN_TIMEOUT": {"20", `MODSHOP_SHUTDOWN_TIMEOUT="20": not a duration`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, _ := newSet(map[string]string{name: tt.env})
			err := s.Parse(nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantInError) {
				t.Fatalf("Parse with %s=%q: err = %v, want it to say %s", name, tt.env, err, tt.wantInError)
			}
		})
	}
}

func TestSet_EveryUnreadableVariableIsNamedAtOnce(t *testing.T) {
	t.Parallel()
	s, _ := newSet(map[string]string{"MODSHOP_DB_MAX_CONNS": "x", "MODSHOP_SHUTDOWN_TIMEOUT": "y"})
	err := s.Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "MODSHOP_DB_MAX_CONNS") || !strings.Contains(err.Error(), "MODSHOP_SHUTDOWN_TIMEOUT") {
		t.Fatalf("err = %v, want both variables named", err)
	}
}

func TestSet_FlagOverridesAnUnreadableVariable(t *testing.T) {
	t.Parallel()
	s, got := newSet(map[string]string{"MODSHOP_DB_MAX_CONNS": "ten"})
	if err := s.Parse([]string{"--db-max-conns", "3"}); err != nil {
		t.Fatalf("the flag was given, yet the variable it overrides fails Parse: %v", err)
	}
	if got.Conns != 3 {
		t.Fatalf("db-max-conns = %d, want 3 from the flag", got.Conns)
	}
}

func TestSet_HelpWorksEvenWithABadVariable(t *testing.T) {
	t.Parallel()
	s, _ := newSet(map[string]string{"MODSHOP_DB_MAX_CONNS": "ten"})
	if err := s.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(--help) = %v, want flag.ErrHelp so the usage is shown", err)
	}
}

func TestSet_BadFlagIsAnError(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--db-max-conns", "many"}, {"--no-such-flag"}, {"--shutdown-timeout", "soon"}} {
		s, _ := newSet(nil)
		if err := s.Parse(args); err == nil {
			t.Errorf("Parse(%q) accepted", args)
		}
	}
}

func TestSet_ListsEverySettingWithItsRealDefault(t *testing.T) {
	t.Parallel()
	// The environment must not leak into the documented defaults.
	s, _ := newSet(map[string]string{"MODSHOP_HTTP_ADDR": ":9000"})
	want := []Setting{
		{"http-addr", "MODSHOP_HTTP_ADDR", ":8080", "listen address"},
		{"db-max-conns", "MODSHOP_DB_MAX_CONNS", "10", "connections"},
		{"secure-cookies", "MODSHOP_SECURE_COOKIES", "false", "Secure cookies"},
		{"shutdown-timeout", "MODSHOP_SHUTDOWN_TIMEOUT", "20s", "drain time"},
	}
	if len(s.Settings) != len(want) {
		t.Fatalf("Settings = %v", s.Settings)
	}
	for i := range want {
		if s.Settings[i] != want[i] {
			t.Errorf("Settings[%d] = %+v, want %+v", i, s.Settings[i], want[i])
		}
	}
	if f := s.FS.Lookup("http-addr"); f == nil || !strings.Contains(f.Usage, "MODSHOP_HTTP_ADDR") {
		t.Error("the flag's usage does not name its variable")
	}
}
