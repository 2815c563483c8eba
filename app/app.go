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
	"slices"
	"strings"

	"github.com/modshop/modshop/platform/config"
	"github.com/modshop/modshop/platform/telemetry"
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
  modshop help [COMMAND]               this text, or a command's own (as modshop COMMAND --help)

Settings (flag, environment variable, default):
`

// commandHelp is what each command's --help says before its flags.
var commandHelp = map[string]struct{ usage, about string }{
	"serve": {"modshop [serve] [flags]",
		"Runs the shop until SIGINT or SIGTERM: the HTTP API, the web UI, the bus and the background\n" +
			"work of the modules --modules names. With no --database-url it starts and manages its own\n" +
			"PostgreSQL, with its data in --data-dir."},
	"gateway": {"modshop gateway --route PREFIX=URL [--route PREFIX=URL ...] [flags]",
		"One entry point in front of module processes: sends each request to the process whose\n" +
			"route prefix its path starts with, and serves the web UI and the whole shop's OpenAPI\n" +
			"document (see docs/extraction.md). It opens no database."},
	"migrate": {"modshop migrate [flags]",
		"Creates the schema and role of each module (all, or those --modules names), applies its\n" +
			"migrations, and exits."},
	"users create": {"modshop users create --username NAME --email ADDRESS [--admin] [flags]",
		"Creates an account. The password is read from standard input when it is piped in (one\n" +
			"line); otherwise one is generated and printed once. `users create` is the one users command."},
	"seed": {"modshop seed --demo [flags]",
		"Loads the demo catalog (8 categories, 52 products). Categories and products that exist\n" +
			"already (by slug and SKU) are left alone, so it can run any number of times."},
}

// commandNames lists the commands, for help and for errors.
var commandNames = []string{"serve", "gateway", "migrate", "users", "seed", "help"}

// Run runs the command named in env.Args and returns when it is done.
func Run(ctx context.Context, env Env) error {
	if env.Lookup == nil {
		env.Lookup = os.LookupEnv
	}
	args := env.Args
	if len(args) > 0 && isHelpFlag(args[0]) {
		printUsage(env)
		return errHelpShown
	}
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
		if len(args) == 0 || args[0] == "help" {
			printUsage(env)
			return nil
		}
		if !slices.Contains(commandNames, args[0]) {
			return unknownCommand(args[0])
		}
		return Run(ctx, Env{Args: []string{args[0], "--help"}, Stdin: env.Stdin, Stdout: env.Stdout, Stderr: env.Stderr, Lookup: env.Lookup})
	default:
		return unknownCommand(cmd)
	}
}

func unknownCommand(cmd string) error {
	return fmt.Errorf("unknown command %q: the commands are %s (modshop help describes them)", cmd, strings.Join(commandNames, ", "))
}

// isHelpFlag reports whether arg asks for help, as the flag package reads it.
func isHelpFlag(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "--h":
		return true
	}
	return false
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
	fmt.Fprint(env.Stdout, "\nmodshop COMMAND --help describes one command and its flags.\n")
}

// printCommandHelp prints a command's --help: its usage, what it does, the
// flags that are its own, then the settings it shares with other commands.
func printCommandHelp(w io.Writer, name string, s *config.Set) {
	h := commandHelp[name]
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", h.usage, h.about)
	shared := map[string]bool{}
	for _, st := range s.Settings {
		shared[st.Flag] = true
	}
	var own []config.Setting
	s.FS.VisitAll(func(f *flag.Flag) {
		if !shared[f.Name] {
			own = append(own, config.Setting{Flag: f.Name, Default: f.DefValue, Usage: f.Usage})
		}
	})
	if len(own) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		printSettings(w, own)
	}
	fmt.Fprint(w, "\nSettings (flag, environment variable, default):\n")
	printSettings(w, s.Settings)
}

func printSettings(w io.Writer, settings []config.Setting) {
	for _, st := range settings {
		def := st.Default
		if def == "" {
			def = `""`
		}
		if st.Env == "" { // a command's own flag, with no variable
			fmt.Fprintf(w, "  --%-28s %s\n      %s\n", st.Flag, def, st.Usage)
			continue
		}
		fmt.Fprintf(w, "  --%-28s %-36s %s\n      %s\n", st.Flag, st.Env, def, st.Usage)
	}
}

// parseConfig reads the shared settings plus a command's own flags.
func parseConfig(env Env, name string, args []string, extra func(*config.Set)) (Config, error) {
	s := config.NewSet(name, env.Lookup)
	s.FS.SetOutput(io.Discard)
	var c Config
	finish := bindConfig(s, &c)
	if extra != nil {
		extra(s)
	}
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(env.Stdout, name, s)
			return c, errHelpShown
		}
		return c, fmt.Errorf("%s: %w (see modshop %s --help)", name, err, name)
	}
	finish()
	if s.FS.NArg() > 0 {
		return c, fmt.Errorf("%s: unexpected argument %q (see modshop %s --help)", name, s.FS.Arg(0), name)
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
	// Lines logged inside a traced request or handler carry its trace and
	// span ids.
	switch c.LogFormat {
	case "text":
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts))), nil
	default:
		return nil, fmt.Errorf("log format %q: use text or json", c.LogFormat)
	}
}
