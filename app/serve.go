package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/modshop/modshop/platform/config"
	"github.com/modshop/modshop/platform/httpx"
)

// runServe runs the shop until SIGINT or SIGTERM, then drains HTTP before
// closing the database.
func runServe(ctx context.Context, env Env, args []string) error {
	cfg, err := parseConfig(env, "serve", args, nil)
	if err != nil {
		return err
	}
	if err := cfg.validateServe(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
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
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set MODSHOP_HTTP_ADDR or --http-addr to another address)", cfg.HTTPAddr, err)
	}
	log.Info("modshop ready", "addr", ln.Addr().String(), "startup", time.Since(start).Round(time.Millisecond))
	return httpx.Serve(ctx, ln, shop.Handler(), cfg.ShutdownTimeout, log)
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
	st, err := openStack(ctx, cfg, log)
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
	cfg.Modules = productModule
	log, err := newLogger(cfg, env.Stderr)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.close(context.WithoutCancel(ctx))
	res, err := st.product.SeedDemo(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "demo catalog: %d categories and %d products added\n", res.Categories, res.Products)
	return nil
}
