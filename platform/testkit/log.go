package testkit

import (
	"io"
	"log/slog"
	"os"

	"github.com/modshop/modshop/platform/telemetry"
)

// Logger logs to stderr when MODSHOP_TEST_LOG is set, else nowhere; a
// line logged inside a span carries its trace and span ids, as the shop's.
func Logger() *slog.Logger {
	if os.Getenv("MODSHOP_TEST_LOG") != "" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(io.Discard, nil)))
}
