package testkit

import (
	"io"
	"log/slog"
	"os"
)

// Logger logs to stderr when MODSHOP_TEST_LOG is set, else nowhere.
func Logger() *slog.Logger {
	if os.Getenv("MODSHOP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
