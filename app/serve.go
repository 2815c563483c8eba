package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/platform/config"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/telemetry"
)

// runServe runs the shop until SIGINT or SIGTERM, then drains HTTP before
// closing the database.
func runServe(ctx context.Context, env Env, args []string) error {
	cfg, err := parseConfig(env, "serve", args, nil)
	if err != nil {
		return err
	}
	if err := cfg.validateServe(Modules(cfg)); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
	// Tracing flushes last, after HTTP has drained and the shop (its bus
	// handlers, its background work) has stopped: their spans are in.
	flush, err := setupTracing(ctx, env, serviceName(cfg.Modules, Modules(cfg)), log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer flush()
	// The address is taken before the database is touched: a port in use
	// (a second `make run`) or a typo must not start, migrate or stop
	// anything.
	ln, err := listenHTTP(cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer ln.Close()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	shop, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := shop.Close(context.WithoutCancel(ctx)); cerr != nil {
			log.Error("shutdown", "err", cerr)
		}
	}()
	log.Info("modshop ready", "url", browserURL(ln.Addr()), "addr", ln.Addr().String(), "startup", time.Since(start).Round(time.Millisecond))
	return httpx.Serve(ctx, ln, shop.Handler(), cfg.ShutdownTimeout, log)
}

// setupTracing installs the process's tracer provider from the OTEL_*
// variables (telemetry.Setup; nothing is recorded when they configure no
// exporter) under the name service, unless OTEL_SERVICE_NAME says
// otherwise. flush exports what is buffered and stops it: call it once
// everything that makes spans has stopped.
func setupTracing(ctx context.Context, env Env, service string, log *slog.Logger) (flush func(), err error) {
	getenv := func(k string) string { v, _ := env.Lookup(k); return v }
	shutdown, err := telemetry.Setup(ctx, telemetry.Settings{ServiceName: service, Getenv: getenv})
	if err != nil {
		return nil, fmt.Errorf("tracing (OTEL_*): %w", err)
	}
	if telemetry.Enabled(getenv) {
		log.Info("tracing on", "service", service)
	}
	return func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := shutdown(flushCtx); err != nil {
			log.Warn("tracing: spans not exported at shutdown", "err", err)
		}
	}, nil
}

// listenHTTP listens on the configured HTTP address, explaining the
// mistakes people make with it.
func listenHTTP(addr string) (net.Listener, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		example := "8080"
		if n, perr := strconv.ParseUint(strings.TrimPrefix(addr, ":"), 10, 16); perr == nil {
			example = strconv.FormatUint(n, 10)
		}
		return nil, fmt.Errorf("--http-addr (MODSHOP_HTTP_ADDR) %q is not host:port (%v): "+
			"write \":%s\" to listen on port %s of every interface, or \"127.0.0.1:%s\" for this machine only",
			addr, err, example, example, example)
	} else if port == "" {
		return nil, fmt.Errorf("--http-addr (MODSHOP_HTTP_ADDR) %q has no port: write for example \"%s8080\"", addr, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (is modshop already running there? set MODSHOP_HTTP_ADDR or --http-addr to another address)", addr, err)
	}
	return ln, nil
}

// browserURL is the address to open in a browser to reach a listener:
// localhost when it listens on every interface.
func browserURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// runMigrate applies every module's migrations and exits.
func runMigrate(ctx context.Context, env Env, args []string) error {
	cfg, err := parseConfig(env, "migrate", args, nil)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, Modules(cfg), log)
	if err != nil {
		return err
	}
	log.Info("migrations applied")
	return st.close(ctx)
}

// runSeed loads the demo catalog: categories and products that exist
// already (by slug and SKU) are left alone, so it can run any number of times.
func runSeed(ctx context.Context, env Env, args []string) error {
	var demo bool
	cfg, err := parseConfig(env, "seed", args, func(s *config.Set) {
		s.FS.BoolVar(&demo, "demo", false, "load the demo catalog")
	})
	if err != nil {
		return err
	}
	if !demo {
		return errors.New("seed: say what to load: --demo")
	}
	// The catalog is the product module's alone.
	cfg.Modules = product.Name
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, Modules(cfg), log)
	if err != nil {
		return err
	}
	defer st.close(context.WithoutCancel(ctx))
	res, err := st.productModule().SeedDemo(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "demo catalog: %d categories and %d products added\n", res.Categories, res.Products)
	return nil
}
