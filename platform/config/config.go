// Package config binds settings to command-line flags and MODSHOP_*
// environment variables: a flag beats its variable, which beats the
// default. It also lists every setting, for --help and the README.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Setting describes one configurable value.
type Setting struct {
	Flag, Env, Default, Usage string
}

// Set is a flag set whose defaults come from the environment.
type Set struct {
	FS       *flag.FlagSet
	Settings []Setting
	envErrs  []envError
	lookup   func(string) (string, bool)
}

// envError is an environment variable that could not be read, kept until
// Parse knows whether the flag it backs was given.
type envError struct {
	flag string
	err  error
}

// NewSet makes an empty set named after a command.
func NewSet(name string, lookupEnv func(string) (string, bool)) *Set {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	return &Set{FS: fs, lookup: lookupEnv}
}

func (s *Set) env(name, env, def, usage string) string {
	s.Settings = append(s.Settings, Setting{Flag: name, Env: env, Default: def, Usage: usage})
	if v, ok := s.lookup(env); ok {
		return v
	}
	return def
}

// String binds a string setting.
func (s *Set) String(p *string, name, env, def, usage string) {
	v := s.env(name, env, def, usage)
	s.FS.StringVar(p, name, v, usage+" ["+env+"]")
}

// Int binds an integer setting.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	raw := s.env(name, env, strconv.Itoa(def), usage)
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		s.envErrs = append(s.envErrs, envError{name, fmt.Errorf("%s=%q: not a whole number", env, raw)})
		v = def
	}
	s.FS.IntVar(p, name, v, usage+" ["+env+"]")
}

// Bool binds a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	raw := s.env(name, env, strconv.FormatBool(def), usage)
	v, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		s.envErrs = append(s.envErrs, envError{name, fmt.Errorf("%s=%q: not true or false", env, raw)})
		v = def
	}
	s.FS.BoolVar(p, name, v, usage+" ["+env+"]")
}

// Duration binds a duration setting ("30s", "24h").
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	raw := s.env(name, env, def.String(), usage)
	v, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		s.envErrs = append(s.envErrs, envError{name, fmt.Errorf("%s=%q: not a duration such as 30s or 24h", env, raw)})
		v = def
	}
	s.FS.DurationVar(p, name, v, usage+" ["+env+"]")
}

// Parse reads args, then reports every environment variable that could not
// be read (a typo there must not be silently ignored) unless its flag was
// given, since the flag beats it.
func (s *Set) Parse(args []string) error {
	if err := s.FS.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	s.FS.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	for _, e := range s.envErrs {
		if !given[e.flag] {
			errs = append(errs, e.err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid environment: %w", errors.Join(errs...))
	}
	return nil
}
