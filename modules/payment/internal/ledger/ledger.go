// Package ledger is the payment module's inside: the ledger of payments
// and refunds, the bus handlers that record what the order saga asks for,
// the worker that carries it out through the provider, and the HTTP API
// (http.go). Its SQL lives in the store (store*.go).
//
// The rule that shapes it: no transaction is open while the provider is
// called. A handler only records a request ('pending'); the worker claims
// it ('processing') in one short statement, calls the provider with the
// row's id as idempotency key, and settles the outcome and publishes it in
// another short transaction.
package ledger

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/payment/internal/provider"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/db"
	"github.com/modshop/modshop/platform/money"
)

// Publisher writes events in the caller's transaction.
type Publisher interface {
	Publish(ctx context.Context, tx *gorm.DB, events ...bus.Event) error
}

// Config tunes the worker. Zero values take the defaults.
type Config struct {
	// ProviderTimeout bounds each provider call (default 10s).
	ProviderTimeout time.Duration
	// MaxAttempts is how often a charge that never got an authorization
	// is tried before it fails as provider_unavailable (default 5).
	MaxAttempts int
	// RetryBackoff is the wait before the first retry; it doubles up to
	// MaxBackoff (defaults 1s and 1m).
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// PollInterval is how long an idle worker waits before it looks for
	// due work without being woken (default 5s).
	PollInterval time.Duration
	// Concurrency is how many provider calls run at once (default 16).
	Concurrency int
	// Currency is the shop's (default money.DefaultCurrency): a payment
	// recorded without one is in it.
	Currency string
}

func (c *Config) setDefaults() {
	if c.ProviderTimeout <= 0 {
		c.ProviderTimeout = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	c.Currency = money.Currency(c.Currency)
}

// lease is how long a claim lasts: a row still 'processing' after it was
// left by a worker that crashed (or hangs) and is claimed again. Each job
// makes at most two provider calls, each bounded by ProviderTimeout.
func (c Config) lease() time.Duration { return 2*c.ProviderTimeout + 10*time.Second }

// backoff is the wait before retry number attempt (1, 2, ...).
func (c Config) backoff(attempt int) time.Duration {
	d := c.RetryBackoff
	for i := 1; i < attempt && d < c.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, c.MaxBackoff)
}

// Service holds the ledger's use cases and its worker.
type Service struct {
	db       *gorm.DB
	pub      Publisher
	provider provider.Provider
	log      *slog.Logger
	cfg      Config
	wake     chan struct{}
	expected [2]atomic.Int64 // new rows announced by handlers before their commit, by kind
	recorded [2]atomic.Bool  // new rows committed by handlers since the last look, by kind
	handed   handOvers       // charges handlers claimed for the worker (handover.go)
	now      func() time.Time
	// outage logs the database going away once, and its return, instead
	// of an error at every look of the worker meanwhile.
	outage *db.Outage
}

// NewService builds the ledger on the module's database handle. Every
// call to p is a span (provider.Traced).
func NewService(gdb *gorm.DB, pub Publisher, p provider.Provider, log *slog.Logger, cfg Config) *Service {
	cfg.setDefaults()
	return &Service{db: gdb, pub: pub, provider: provider.Traced(p), log: log, cfg: cfg, wake: make(chan struct{}, 1), now: time.Now,
		outage: &db.Outage{Log: log, What: "payment worker"}}
}

// outcomeContext makes an outcome event carry the order id as correlation
// id and the order request's idempotency key.
func outcomeContext(ctx context.Context, orderID, key string) context.Context {
	return bus.WithIdempotencyKey(bus.WithCorrelationID(ctx, orderID), key)
}

// Amounts are decimal strings end to end ("12.50"): parsed by pattern,
// stored as NUMERIC(10,2), read back as text. No float ever holds money.
var amountPattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$`)

// normaliseAmount checks an amount and writes it with two decimals. It
// refuses zero, negatives, more than two decimals and anything
// NUMERIC(10,2) cannot hold.
func normaliseAmount(s string) (string, bool) {
	if !amountPattern.MatchString(s) {
		return "", false
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "00")[:2]
	if whole == "0" && frac == "00" {
		return "", false
	}
	return whole + "." + frac, true
}

// currency is a payment's currency: code, or the shop's for a payment
// recorded without one (before payments kept theirs).
func (s *Service) currency(code string) string {
	if code == "" {
		return s.cfg.Currency
	}
	return code
}

func isUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// errText bounds an error for the last_error column.
func errText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "?")
	if r := []rune(s); len(r) > 500 {
		s = string(r[:500])
	}
	return s
}
