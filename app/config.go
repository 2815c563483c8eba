package app

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/config"
	"github.com/modshop/modshop/platform/httpx"
	"github.com/modshop/modshop/platform/money"
)

// Config is everything an operator can set, by flag or MODSHOP_* variable.
type Config struct {
	HTTPAddr         string
	DatabaseURL      string
	DataDir          string
	EmbeddedPort     int
	LogLevel         string
	LogFormat        string
	DBMaxConns       int
	StatementTimeout time.Duration
	MaxBodyBytes     int
	// MaxRequestsInFlight bounds the requests served at once (0: sized
	// from memory and MaxBodyBytes, httpx.DefaultInFlight).
	MaxRequestsInFlight int
	ShutdownTimeout     time.Duration
	TrustedProxies      string
	SessionTTL          time.Duration
	SecureCookies       bool
	LoginPerAccount     int
	LoginPerClient      int
	LoginWindow         time.Duration
	BusMaxAttempts      int
	BusSafetyPoll       time.Duration
	BusRetention        time.Duration
	BusGroupExpiry      time.Duration
	ReservationTTL      time.Duration
	SeedDemo            bool
	StockTimeout        time.Duration
	PaymentTimeout      time.Duration
	PaymentTestDelay    time.Duration
	// PaymentProviderTimeout bounds each payment provider call; a payment
	// or refund claimed by a process that died is taken up by another
	// after 2×PaymentProviderTimeout+10s (the claim's lease).
	PaymentProviderTimeout time.Duration
	// Modules lists the modules this process runs: "all", or names
	// separated by commas (user,product,order,payment).
	Modules string
	// ModuleDatabaseURLs overrides DatabaseURL for a module's pool and
	// migrations, by module name (MODSHOP_<NAME>_DATABASE_URL); a module
	// without one uses DatabaseURL.
	ModuleDatabaseURLs map[string]string
	// BusTransport carries events between modules: "postgres" (the bus
	// tables in the shared database) or "rabbitmq" (each process's outbox
	// in its modules' database, forwarded to RabbitMQ).
	BusTransport string
	// AMQPURL and AMQPNamespace: the RabbitMQ of the rabbitmq transport,
	// and the prefix of its exchange and queue names.
	AMQPURL       string
	AMQPNamespace string
	// UserURL is where the user module answers when it does not run in
	// this process: session tokens are checked there.
	UserURL string
	// CORSOrigins lists, comma-separated, the origins whose pages may call
	// the API from a browser, with credentials (httpx.CORS); empty: none.
	CORSOrigins string
	// TraceURLTemplate links the trace id staff see on an order to the
	// operator's tracing UI: {trace_id} is replaced; empty: no links.
	TraceURLTemplate string
	// ShippingMethods are the methods that deliver to an address,
	// code=label:price comma-separated (order.ParseShippingMethods);
	// pickup (collect in store, free) is built in.
	ShippingMethods string

	// RegisterPerClient and RegisterWindow throttle registrations per
	// client address; PasswordHashes bounds the hashes in flight (0: sized
	// from memory) and PasswordHashWait how long a request waits for one.
	RegisterPerClient int
	RegisterWindow    time.Duration
	PasswordHashes    int
	PasswordHashWait  time.Duration

	// Currency is the shop's currency (ISO 4217, two minor units): every
	// price, total, payment and refund is in it.
	Currency string

	// TraceStatements makes a span of each database statement run inside
	// a traced request or handler (db.TraceStatements).
	TraceStatements bool
}

// bindConfig registers the settings shared by every command; finish
// completes c once s is parsed.
func bindConfig(s *config.Set, c *Config) (finish func()) {
	s.String(&c.HTTPAddr, "http-addr", "MODSHOP_HTTP_ADDR", ":8080", "address the HTTP server listens on")
	s.String(&c.DatabaseURL, "database-url", "MODSHOP_DATABASE_URL", "", "PostgreSQL URL (its user must be able to create roles and schemas); empty: run the embedded PostgreSQL")
	s.String(&c.DataDir, "data-dir", "MODSHOP_DATA_DIR", ".data", "where the embedded PostgreSQL keeps its data")
	s.Int(&c.EmbeddedPort, "embedded-pg-port", "MODSHOP_EMBEDDED_PG_PORT", 54320, "TCP port of the embedded PostgreSQL (127.0.0.1)")
	s.String(&c.LogLevel, "log-level", "MODSHOP_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "MODSHOP_LOG_FORMAT", "text", "text or json")
	s.Int(&c.DBMaxConns, "db-max-conns", "MODSHOP_DB_MAX_CONNS", 10, "connections per module pool")
	s.Duration(&c.StatementTimeout, "statement-timeout", "MODSHOP_STATEMENT_TIMEOUT", 5*time.Second, "longest a database statement of an HTTP request may run (503 beyond); 0: no limit")
	s.Bool(&c.TraceStatements, "trace-statements", "MODSHOP_TRACE_STATEMENTS", true, "when tracing is on (OTEL_*), make a span of each database statement of a traced request or handler; false: requests and handlers only")
	s.Int(&c.MaxBodyBytes, "max-body-bytes", "MODSHOP_MAX_BODY_BYTES", 1<<20, "largest request body accepted")
	s.Int(&c.MaxRequestsInFlight, "max-requests-in-flight", "MODSHOP_MAX_REQUESTS_IN_FLIGHT", 0, "requests served at once; beyond, a request is answered 503 with Retry-After at once (/healthz, /readyz and /metrics excepted); 0: sized from memory and the body limit")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "MODSHOP_SHUTDOWN_TIMEOUT", 20*time.Second, "how long requests in flight may take to finish on shutdown")
	s.String(&c.TrustedProxies, "trusted-proxies", "MODSHOP_TRUSTED_PROXIES", "", "comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed")
	s.Duration(&c.SessionTTL, "session-ttl", "MODSHOP_SESSION_TTL", 24*time.Hour, "how long a log-in lasts")
	s.Bool(&c.SecureCookies, "secure-cookies", "MODSHOP_SECURE_COOKIES", false, "mark the session cookie Secure (set it when serving over HTTPS)")
	s.Int(&c.LoginPerAccount, "login-attempts-per-account", "MODSHOP_LOGIN_ATTEMPTS_PER_ACCOUNT", 5, "failed log-ins allowed per account per window")
	s.Int(&c.LoginPerClient, "login-attempts-per-client", "MODSHOP_LOGIN_ATTEMPTS_PER_CLIENT", 30, "log-ins allowed per client address per window")
	s.Duration(&c.LoginWindow, "login-throttle-window", "MODSHOP_LOGIN_THROTTLE_WINDOW", 15*time.Minute, "window of the log-in throttles")
	s.Int(&c.RegisterPerClient, "register-attempts-per-client", "MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT", 10, "registrations allowed per client address per window")
	s.Duration(&c.RegisterWindow, "register-throttle-window", "MODSHOP_REGISTER_THROTTLE_WINDOW", time.Hour, "window of the registration throttle")
	s.Int(&c.PasswordHashes, "password-hashes", "MODSHOP_PASSWORD_HASHES", 0, "password hashes (argon2id, 19 MiB each) computed at once; 0: sized from memory")
	s.Duration(&c.PasswordHashWait, "password-hash-wait", "MODSHOP_PASSWORD_HASH_WAIT", 3*time.Second, "how long a registration or log-in waits for a hashing slot before it is answered 503")
	s.Int(&c.BusMaxAttempts, "bus-max-attempts", "MODSHOP_BUS_MAX_ATTEMPTS", 5, "attempts a handler gets before its message becomes a dead letter")
	s.Duration(&c.BusSafetyPoll, "bus-safety-poll", "MODSHOP_BUS_SAFETY_POLL", 5*time.Second, "how often an idle subscriber looks for messages without a wake-up")
	s.Duration(&c.BusRetention, "bus-retention", "MODSHOP_BUS_RETENTION", 7*24*time.Hour, "how long the bus keeps a message at least; then it is deleted once every active consumer group has processed it")
	s.Duration(&c.BusGroupExpiry, "bus-group-expiry", "MODSHOP_BUS_GROUP_EXPIRY", 14*24*time.Hour, "a consumer group that has not run for this long no longer holds back the pruning of messages (it is shown inactive on the bus page)")
	s.Duration(&c.ReservationTTL, "reservation-ttl", "MODSHOP_RESERVATION_TTL", 15*time.Minute, "how long reserved stock is held if the order side never answers")
	s.Duration(&c.StockTimeout, "stock-timeout", "MODSHOP_STOCK_TIMEOUT", 30*time.Second, "an order whose stock is not reserved or rejected by then is cancelled")
	s.Duration(&c.PaymentTimeout, "payment-timeout", "MODSHOP_PAYMENT_TIMEOUT", 60*time.Second, "an order not paid (or declined) by then is cancelled")
	s.Duration(&c.PaymentTestDelay, "payment-test-delay", "MODSHOP_PAYMENT_TEST_DELAY", 2*time.Second, "how long the test payment provider takes to approve pm_card_delayed")
	s.Duration(&c.PaymentProviderTimeout, "payment-provider-timeout", "MODSHOP_PAYMENT_PROVIDER_TIMEOUT", 10*time.Second, "longest a payment provider call may take; a payment claimed by a process that died is taken up by another after twice this plus 10s")
	s.String(&c.Currency, "currency", "MODSHOP_CURRENCY", money.DefaultCurrency, "the shop's currency, an ISO 4217 code with two decimals (EUR, USD, GBP, CHF, ...; lower case is read upper case); it cannot change while the catalog has products (docs/operations.md, \"Changing the shop's currency\")")
	s.Bool(&c.SeedDemo, "seed-demo", "MODSHOP_SEED_DEMO", false, "load the demo catalog at start when the catalog is empty")
	names := shopModuleNames()
	s.String(&c.Modules, "modules", "MODSHOP_MODULES", "all", "modules this process runs: all, or a comma-separated list of "+strings.Join(names, ", "))
	// Each module's own database URL, its setting named after it.
	urls := make([]string, len(names))
	for i, name := range names {
		s.String(&urls[i], moduleDatabaseFlag(name), moduleDatabaseEnv(name), "",
			"PostgreSQL URL of the "+name+" module's schema; empty: MODSHOP_DATABASE_URL")
	}
	s.String(&c.BusTransport, "bus-transport", "MODSHOP_BUS_TRANSPORT", "postgres", "how events travel between modules: postgres (the bus tables in MODSHOP_DATABASE_URL) or rabbitmq (needed when modules have databases of their own)")
	s.String(&c.AMQPURL, "amqp-url", "MODSHOP_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/", "RabbitMQ URL of the rabbitmq bus transport")
	s.String(&c.AMQPNamespace, "amqp-namespace", "MODSHOP_AMQP_NAMESPACE", "modshop.", "prefix of the rabbitmq transport's exchange and queue names")
	s.String(&c.CORSOrigins, "cors-origins", "MODSHOP_CORS_ORIGINS", "", "comma-separated origins (such as https://store.example.com) whose pages may call the API from a browser, with credentials; empty: none")
	s.String(&c.TraceURLTemplate, "trace-url-template", "MODSHOP_TRACE_URL_TEMPLATE", "", "link from an order's trace id (staff order page and API) to the tracing UI, {trace_id} replaced (for example http://localhost:16686/trace/{trace_id}); empty: the trace id only")
	s.String(&c.ShippingMethods, "shipping-methods", "MODSHOP_SHIPPING_METHODS", defaultShippingMethods, "shipping methods that deliver to an address, code=label:price comma-separated; pickup (collect in store, 0.00, no address) is built in; empty: pickup only")
	s.String(&c.UserURL, "user-url", "MODSHOP_USER_URL", "", "base URL of a process running the user module (http://host:port), needed when this one does not: session tokens are checked there")
	return func() {
		c.ModuleDatabaseURLs = map[string]string{}
		for i, name := range names {
			if urls[i] != "" {
				c.ModuleDatabaseURLs[name] = urls[i]
			}
		}
	}
}

// defaultShippingMethods are a small shop's delivery options.
const defaultShippingMethods = "standard=Standard delivery:4.90,express=Express delivery:9.90"

// validate refuses settings that would make the shop misbehave quietly
// (a negative body limit refusing every request, a pool of no connections).
func (c Config) validate() error { return c.validateWith(Modules(c)) }

// validateWith is validate for a shop of the modules mods.
func (c Config) validateWith(mods []Module) error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.MaxBodyBytes >= 1024 && c.MaxBodyBytes <= 64<<20, "MODSHOP_MAX_BODY_BYTES=%d: must be from 1024 to 67108864", c.MaxBodyBytes)
	check(c.MaxRequestsInFlight >= 0 && c.MaxRequestsInFlight <= 100_000, "MODSHOP_MAX_REQUESTS_IN_FLIGHT=%d: must be from 0 (sized from memory) to 100000", c.MaxRequestsInFlight)
	check(c.DBMaxConns >= 1 && c.DBMaxConns <= 1000, "MODSHOP_DB_MAX_CONNS=%d: must be from 1 to 1000", c.DBMaxConns)
	check(c.EmbeddedPort >= 1 && c.EmbeddedPort <= 65535, "MODSHOP_EMBEDDED_PG_PORT=%d: must be a TCP port", c.EmbeddedPort)
	check(c.StatementTimeout == 0 || c.StatementTimeout >= time.Millisecond, "MODSHOP_STATEMENT_TIMEOUT=%s: must be 0 (no limit) or at least 1ms", c.StatementTimeout)
	check(c.ShutdownTimeout > 0, "MODSHOP_SHUTDOWN_TIMEOUT=%s: must be positive", c.ShutdownTimeout)
	check(c.SessionTTL >= time.Minute, "MODSHOP_SESSION_TTL=%s: must be at least 1m", c.SessionTTL)
	check(c.LoginPerAccount >= 1 && c.LoginPerClient >= 1, "log-in attempts per account and per client must be at least 1")
	check(c.LoginWindow >= time.Second, "MODSHOP_LOGIN_THROTTLE_WINDOW=%s: must be at least 1s", c.LoginWindow)
	check(c.RegisterPerClient >= 1, "MODSHOP_REGISTER_ATTEMPTS_PER_CLIENT=%d: must be at least 1", c.RegisterPerClient)
	check(c.RegisterWindow >= time.Second, "MODSHOP_REGISTER_THROTTLE_WINDOW=%s: must be at least 1s", c.RegisterWindow)
	check(c.PasswordHashes >= 0 && c.PasswordHashes <= 1024, "MODSHOP_PASSWORD_HASHES=%d: must be from 0 (sized from memory) to 1024", c.PasswordHashes)
	check(c.PasswordHashWait >= time.Millisecond && c.PasswordHashWait <= time.Minute, "MODSHOP_PASSWORD_HASH_WAIT=%s: must be from 1ms to 1m", c.PasswordHashWait)
	check(c.BusMaxAttempts >= 1 && c.BusMaxAttempts <= 100, "MODSHOP_BUS_MAX_ATTEMPTS=%d: must be from 1 to 100", c.BusMaxAttempts)
	check(c.StockTimeout >= 100*time.Millisecond && c.PaymentTimeout >= 100*time.Millisecond, "MODSHOP_STOCK_TIMEOUT and MODSHOP_PAYMENT_TIMEOUT must be at least 100ms")
	check(c.PaymentProviderTimeout >= 100*time.Millisecond && c.PaymentProviderTimeout <= 10*time.Minute, "MODSHOP_PAYMENT_PROVIDER_TIMEOUT=%s: must be from 100ms to 10m", c.PaymentProviderTimeout)
	check(c.PaymentTestDelay < c.PaymentProviderTimeout, "MODSHOP_PAYMENT_TEST_DELAY=%s: must be below MODSHOP_PAYMENT_PROVIDER_TIMEOUT=%s, or every delayed test payment times out", c.PaymentTestDelay, c.PaymentProviderTimeout)
	check(c.ReservationTTL >= time.Second, "MODSHOP_RESERVATION_TTL=%s: must be at least 1s", c.ReservationTTL)
	check(c.BusSafetyPoll >= 100*time.Millisecond, "MODSHOP_BUS_SAFETY_POLL=%s: must be at least 100ms", c.BusSafetyPoll)
	check(c.BusRetention >= time.Minute, "MODSHOP_BUS_RETENTION=%s: must be at least 1m", c.BusRetention)
	check(c.BusGroupExpiry >= time.Hour, "MODSHOP_BUS_GROUP_EXPIRY=%s: must be at least 1h", c.BusGroupExpiry)
	check(c.BusTransport == bus.TransportPostgres || c.BusTransport == bus.TransportRabbitMQ, "MODSHOP_BUS_TRANSPORT=%q: postgres or rabbitmq", c.BusTransport)
	if c.BusTransport == bus.TransportRabbitMQ {
		u, err := url.Parse(c.AMQPURL)
		check(err == nil && (u.Scheme == "amqp" || u.Scheme == "amqps") && u.Host != "", "MODSHOP_AMQP_URL=%q: must be amqp://user:password@host:port/vhost", c.AMQPURL)
	}
	errs = append(errs, c.validateModules(mods)...)
	if c.DatabaseURL != "" {
		if err := checkDatabaseURL(c.DatabaseURL); err != nil {
			errs = append(errs, fmt.Errorf("MODSHOP_DATABASE_URL: %w", err))
		}
	}
	if _, err := httpx.ParseOrigins(c.CORSOrigins); err != nil {
		errs = append(errs, fmt.Errorf("MODSHOP_CORS_ORIGINS: %w", err))
	}
	if c.UserURL != "" {
		if err := checkHTTPURL(c.UserURL); err != nil {
			errs = append(errs, fmt.Errorf("MODSHOP_USER_URL=%q: %w", c.UserURL, err))
		}
	}
	if _, err := money.ParseCurrency(c.Currency); err != nil {
		errs = append(errs, fmt.Errorf("MODSHOP_CURRENCY: %w", err))
	}
	if err := order.CheckTraceURLTemplate(c.TraceURLTemplate); err != nil {
		errs = append(errs, fmt.Errorf("MODSHOP_TRACE_URL_TEMPLATE=%q: %w", c.TraceURLTemplate, err))
	}
	if _, err := order.ParseShippingMethods(c.ShippingMethods); err != nil {
		errs = append(errs, fmt.Errorf("MODSHOP_SHIPPING_METHODS: %w", err))
	}
	return errors.Join(errs...)
}

// validateModules refuses a MODSHOP_MODULES that names no module of mods
// or one it does not have, and a module database URL that is not one.
func (c Config) validateModules(mods []Module) []error {
	var errs []error
	if _, err := selectModules(c.Modules, mods); err != nil {
		errs = append(errs, err)
	}
	for _, m := range mods {
		if u := c.ModuleDatabaseURLs[m.Name]; u != "" {
			if err := checkDatabaseURL(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", moduleDatabaseEnv(m.Name), err))
			}
		}
	}
	return errs
}

// validateServe refuses what a process serving mods needs beyond
// validate: one without the module that owns sessions must know where to
// check session tokens.
func (c Config) validateServe(mods []Module) error {
	if err := c.validateWith(mods); err != nil {
		return err
	}
	local, _ := selectModules(c.Modules, mods)
	for _, m := range mods {
		if m.RemoteAuthenticator != nil && c.UserURL == "" && !slices.ContainsFunc(local, func(l Module) bool { return l.Name == m.Name }) {
			return fmt.Errorf("MODSHOP_USER_URL: set it to where the %s module runs (for example http://127.0.0.1:8081): "+
				"this process runs without the %s module and checks session tokens there", m.Name, m.Name)
		}
	}
	return nil
}

// selectModules reads MODSHOP_MODULES: "all" or a comma-separated list of
// module names, each one of mods. It returns those modules in start order.
func selectModules(spec string, mods []Module) ([]Module, error) {
	all := moduleNames(mods)
	if strings.TrimSpace(spec) == "all" {
		return mods, nil
	}
	want := map[string]bool{}
	var unknown []string
	for _, name := range strings.Split(spec, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(all, name) {
			unknown = append(unknown, fmt.Sprintf("%q", name))
			continue
		}
		want[name] = true
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("MODSHOP_MODULES=%q: unknown module %s; the modules are %s, or all",
			spec, strings.Join(unknown, ", "), strings.Join(all, ", "))
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("MODSHOP_MODULES=%q: name at least one module (%s), or all", spec, strings.Join(all, ", "))
	}
	var out []Module
	for _, m := range mods {
		if want[m.Name] {
			out = append(out, m)
		}
	}
	return out, nil
}

// moduleDatabaseURL is the module's own database URL setting ("" when it
// has none and uses DatabaseURL).
func (c Config) moduleDatabaseURL(name string) string { return c.ModuleDatabaseURLs[name] }

// checkDatabaseURL refuses a URL that PostgreSQL clients would misread.
func checkDatabaseURL(raw string) error {
	if strings.Contains(raw, "=") && !strings.Contains(raw, "://") {
		return nil // a key=value connection string
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a URL (postgres://user@host:port/database?sslmode=disable)")
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q: use postgres://user@host:port/database", u.Scheme)
	}
	return nil
}

// checkHTTPURL refuses anything but an absolute http(s) base URL.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("want an absolute http:// or https:// URL, such as http://127.0.0.1:8081")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("want a base URL without query or fragment")
	}
	return nil
}

// currency is MODSHOP_CURRENCY read ("" when it is not valid, which
// validate refuses; a module then keeps money.DefaultCurrency).
func (c Config) currency() string {
	code, _ := money.ParseCurrency(c.Currency)
	return code
}

// corsOrigins is MODSHOP_CORS_ORIGINS read; the configuration is validated.
func (c Config) corsOrigins() []string {
	o, err := httpx.ParseOrigins(c.CORSOrigins)
	if err != nil {
		panic("app: CORS origins of an unvalidated configuration: " + err.Error())
	}
	return o
}

// inFlightBound is the bound on requests in flight: the setting, or sized
// from memory and the body limit when it is 0; with how it was chosen.
func inFlightBound(setting, maxBodyBytes int) (limit int, why string) {
	if setting > 0 {
		return setting, "MODSHOP_MAX_REQUESTS_IN_FLIGHT"
	}
	return httpx.DefaultInFlight(maxBodyBytes)
}

// probePaths answer however many requests are in flight: operators must
// see a busy process.
var probePaths = []string{"/healthz", "/readyz", "/metrics"}
