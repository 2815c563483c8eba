// Package app is the composition root: it reads configuration, starts or
// connects to PostgreSQL, provisions and migrates every module's schema,
// builds the modules and wires their routes. It is the only package that
// knows every module.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/modshop/modshop/platform/config"
)

// Env is how the process meets the outside world; tests pass their own.
type Env struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Lookup func(string) (string, bool)
}

const usage = `modshop: a shop backend and browser front end in one binary.

Usage:
  modshop [serve] [flags]              run the shop (the default); --modules picks which modules run here
  modshop gateway --route PREFIX=URL   one entry point in front of module processes: routes by path
                                       prefix, serves the web UI (see docs/extraction.md)
  modshop migrate [flags]              apply every module's migrations and exit
  modshop users create --admin ...     create an account (the first admin)
  modshop seed --demo [flags]          load the demo catalog (adds only what is missing)
  modshop help                         this text

Settings (flag, environment variable, default):
`

// Run runs the command named in env.Args and returns when it is done.
func Run(ctx context.Context, env Env) error {
	if env.Lookup == nil {
		env.Lookup = os.LookupEnv
	}
	args := env.Args
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, env, args)
	case "gateway":
		return runGateway(ctx, env, args)
	case "migrate":
		return runMigrate(ctx, env, args)
	case "users":
		return runUsers(ctx, env, args)
	case "seed":
		return runSeed(ctx, env, args)
	case "help":
		printUsage(env)
		return nil
	default:
		printUsage(env)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func printUsage(env Env) {
	s := config.NewSet("modshop", env.Lookup)
	var c Config
	bindConfig(s, &c)
	fmt.Fprint(env.Stdout, usage)
	printSettings(env.Stdout, s.Settings)
	g := config.NewSet("gateway", env.Lookup)
	var gc GatewayConfig
	var routes routeList
	var envRoutes string
	bindGatewayConfig(g, &gc, &routes, &envRoutes)
	fmt.Fprint(env.Stdout, "\nSettings of modshop gateway:\n")
	printSettings(env.Stdout, g.Settings)
}

func printSettings(w io.Writer, settings []config.Setting) {
	for _, st := range settings {
		def := st.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%-28s %-36s %s\n      %s\n", st.Flag, st.Env, def, st.Usage)
	}
}

// parseConfig reads the shared settings plus a command's own flags.
func parseConfig(env Env, name string, args []string, extra func(*config.Set)) (Config, error) {
	s := config.NewSet(name, env.Lookup)
	s.FS.SetOutput(io.Discard)
	var c Config
	bindConfig(s, &c)
	if extra != nil {
		extra(s)
	}
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(env)
			return c, errHelpShown
		}
		return c, fmt.Errorf("%s: %w (see modshop --help)", name, err)
	}
	if s.FS.NArg() > 0 {
		return c, fmt.Errorf("%s: unexpected argument %q (see modshop --help)", name, s.FS.Arg(0))
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// errHelpShown ends a command that printed help: not a failure.
var errHelpShown = errors.New("help shown")

// IsHelp reports whether err only means help was printed.
func IsHelp(err error) bool { return errors.Is(err, errHelpShown) }

func newLogger(c Config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.LogFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("log format %q: use text or json", c.LogFormat)
	}
}
