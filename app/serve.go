package app

import (
	"context"
	"fmt"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/modshop/modshop/platform/httpx"
)

// runServe runs the shop until SIGINT or SIGTERM, then drains HTTP before
// closing the database.
func runServe(ctx context.Context, env Env, args []string) error {
	cfg, err := parseConfig(env, "serve", args, nil)
	if err != nil {
		return err
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
