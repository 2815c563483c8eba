// Package accounts is the user module's inside: accounts, password hashes,
// sessions, roles and log-in throttling (the use cases, in service.go),
// their HTTP handlers (http.go) and their SQL (store*.go).
package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/bus"
	"github.com/modshop/modshop/platform/cursor"
)

// Publisher writes events in the caller's transaction.
type Publisher interface {
	Publish(ctx context.Context, tx *gorm.DB, events ...bus.Event) error
}

// Config tunes sessions, throttles and password hashing.
type Config struct {
	SessionTTL    time.Duration
	SecureCookies bool
	// Throttle bounds log-ins; RegisterThrottle registrations through the API.
	Throttle         ThrottleConfig
	RegisterThrottle RegisterThrottleConfig
	// PasswordHashes bounds the hashes in flight (registration and log-in).
	PasswordHashes HashConfig
	// Metrics, when set, receives the password hashing metrics.
	Metrics prometheus.Registerer
}

// Service holds the account use cases.
type Service struct {
	store     store
	publisher Publisher
	log       *slog.Logger
	cfg       Config
	// The throttles, kept in the database and shared by every process.
	throttles         *throttleTable
	loginPerAccount   *throttle
	loginPerClient    *throttle
	registerPerClient *throttle
	hashes            *hashGate
	// sessions keeps session lookups while its listener listens
	// (ListenForSessionChanges).
	sessions *sessionCache
	now      func() time.Time
}

// NewService builds the use cases on the module's database handle.
func NewService(gdb *gorm.DB, publisher Publisher, log *slog.Logger, cfg Config) *Service {
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 24 * time.Hour
	}
	if cfg.Throttle.Window <= 0 {
		cfg.Throttle = DefaultThrottle
	}
	if cfg.RegisterThrottle.Window <= 0 {
		cfg.RegisterThrottle = DefaultRegisterThrottle
	}
	if cfg.PasswordHashes.Slots <= 0 {
		slots, why := DefaultHashSlots()
		cfg.PasswordHashes.Slots = slots
		log.Info("password hashes in flight bounded", "slots", slots, "sized", why)
	}
	throttles := &throttleTable{db: gdb}
	s := &Service{
		store:             store{db: gdb},
		publisher:         publisher,
		log:               log,
		cfg:               cfg,
		throttles:         throttles,
		loginPerAccount:   throttles.throttle("login-account", cfg.Throttle.PerAccountBurst, cfg.Throttle.Window),
		loginPerClient:    throttles.throttle("login-client", cfg.Throttle.PerClientBurst, cfg.Throttle.Window),
		registerPerClient: throttles.throttle("register-client", cfg.RegisterThrottle.PerClientBurst, cfg.RegisterThrottle.Window),
		hashes:            newHashGate(cfg.PasswordHashes),
		sessions:          newSessionCache(time.Now),
		now:               time.Now,
	}
	if cfg.Metrics != nil {
		if err := s.hashes.metrics.register(cfg.Metrics); err != nil {
			log.Error("password hashing metrics not shown", "err", err)
		}
	}
	return s
}

// Register creates an account with the given roles, as the command line
// does: not throttled, but hashed under the same bound as every request.
func (s *Service) Register(ctx context.Context, r Registration, roles []string) (User, error) {
	r = r.normalise()
	if errs := r.validate(); len(errs) > 0 {
		return User{}, apperr.Invalid(errs...)
	}
	return s.createAccount(ctx, r, roles)
}

// SignUp registers a customer through the API: throttled per client
// address, like log-in.
func (s *Service) SignUp(ctx context.Context, r Registration, clientAddr string) (User, error) {
	r = r.normalise()
	if errs := r.validate(); len(errs) > 0 {
		return User{}, apperr.Invalid(errs...)
	}
	client := clientBucket(clientAddr)
	wait, err := s.registerPerClient.take(ctx, client)
	if err != nil {
		return User{}, err
	}
	if wait > 0 {
		return User{}, apperr.Throttled("too many registrations from your address; try again later", wait)
	}
	// A sign-up refused for capacity keeps its attempt spent, unlike a
	// log-in: a taken name was answered before the hash and paid, so giving
	// back a free name's would let a prober who keeps the hashing slots
	// busy pay for the names that exist and for nothing else.
	return s.createAccount(ctx, r, []string{"customer"})
}

// createAccount checks that the names are free before it hashes (a taken
// name is answered 409 either way, so asking first tells nothing new and
// spends no hash on it), then hashes under the bound and inserts, where
// the unique indexes still decide a race between two sign-ups.
func (s *Service) createAccount(ctx context.Context, r Registration, roles []string) (User, error) {
	if err := s.store.namesFree(ctx, r.Username, r.Email); err != nil {
		return User{}, takenError(err)
	}
	hash, err := s.hashes.hash(ctx, r.Password)
	if err != nil {
		return User{}, err
	}
	row := userRow{ID: uuid.NewString(), Username: r.Username, DisplayName: r.DisplayName, Email: r.Email, PasswordHash: hash, CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	roles = dedupe(roles)
	announce := func(tx *gorm.DB) error {
		return s.publisher.Publish(ctx, tx, events.UserRegistered{UserID: row.ID, Username: row.Username, DisplayName: row.DisplayName, Roles: roles, RegisteredAt: row.CreatedAt})
	}
	if err := s.store.createUser(ctx, row, roles, announce); err != nil {
		return User{}, takenError(err)
	}
	return User{ID: row.ID, Username: row.Username, DisplayName: row.DisplayName, Email: row.Email, Roles: roles, CreatedAt: row.CreatedAt}, nil
}

// takenError reports a taken username or e-mail as a conflict naming the
// field; other errors pass through.
func takenError(err error) error {
	switch {
	case errors.Is(err, errUsernameTaken):
		return apperr.Conflict("this username is taken").WithField("username", "is taken")
	case errors.Is(err, errEmailTaken):
		return apperr.Conflict("an account with this e-mail address exists").WithField("email", "is taken")
	}
	return err
}

// Credentials is what a log-in sends: a username or e-mail, and a password.
type Credentials struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// Session is a fresh log-in: the token is shown once and stored only hashed.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      User      `json:"user"`
}

// errBadCredentials is one answer for an unknown login and a wrong
// password, so the API does not reveal which accounts exist.
var errBadCredentials = apperr.Unauthorized("the login or password is wrong")

// Login checks credentials under the throttles and opens a session.
func (s *Service) Login(ctx context.Context, c Credentials, clientAddr, userAgent string) (Session, error) {
	login := strings.ToLower(strings.TrimSpace(c.Login))
	var errs []apperr.FieldError
	if login == "" || len(login) > maxLoginLen {
		errs = append(errs, apperr.FieldError{Field: "login", Message: "must be your username or e-mail address"})
	}
	switch {
	case c.Password == "":
		errs = append(errs, apperr.FieldError{Field: "password", Message: "is required"})
	case len(c.Password) > 4*MaxPasswordLen:
		errs = append(errs, apperr.FieldError{Field: "password", Message: "is longer than any password we accept"})
	}
	if len(errs) > 0 {
		return Session{}, apperr.Invalid(errs...)
	}

	client := clientBucket(clientAddr)
	wait, err := s.loginPerClient.take(ctx, client)
	if err != nil {
		return Session{}, err
	}
	if wait > 0 {
		return Session{}, apperr.Throttled("too many log-in attempts from your address; try again later", wait)
	}
	row, err := s.store.userByLogin(ctx, login)
	if err != nil && !errors.Is(err, errNoUser) {
		return Session{}, err
	}
	unknown := errors.Is(err, errNoUser)
	// One bucket per account, whichever of its names is typed; guesses at
	// names that do not exist get buckets of their own.
	accountKey := "user:" + row.ID
	if unknown {
		accountKey = "login:" + login
	}
	if wait, err = s.loginPerAccount.take(ctx, accountKey); err != nil {
		return Session{}, err
	}
	if wait > 0 {
		return Session{}, apperr.Throttled("too many log-in attempts for this account; try again later", wait)
	}
	hash := row.PasswordHash
	if unknown {
		hash = dummyHash
	}
	ok, verr := s.hashes.verify(ctx, c.Password, hash)
	if s.hashes.notRun(verr) {
		// Nothing was checked: the attempt counts against neither bucket.
		bg := context.WithoutCancel(ctx)
		return Session{}, errors.Join(verr, s.loginPerAccount.refund(bg, accountKey), s.loginPerClient.refund(bg, client))
	}
	if verr != nil {
		return Session{}, fmt.Errorf("verify password of user %s: %w", row.ID, verr)
	}
	if !ok || unknown {
		s.log.InfoContext(ctx, "log-in refused", "client", clientAddr)
		return Session{}, errBadCredentials
	}
	// A success refunds the account's attempts.
	if err := s.loginPerAccount.forget(ctx, accountKey); err != nil {
		return Session{}, err
	}
	// Told only to whoever knows the password: a guesser learns nothing.
	if row.SuspendedAt != nil {
		s.log.InfoContext(ctx, "log-in of a suspended account refused", "user", row.ID)
		return Session{}, errSuspended
	}

	now := s.now()

	token, tokenHash, err := newToken()
	if err != nil {
		return Session{}, err
	}
	expires := now.Add(s.cfg.SessionTTL).UTC().Truncate(time.Second)
	if err := s.store.createSession(ctx, row.ID, tokenHash, expires, truncate(userAgent, 200), truncate(clientAddr, 64)); err != nil {
		return Session{}, err
	}
	u, err := s.store.userByID(ctx, row.ID)
	if err != nil {
		return Session{}, err
	}
	return Session{Token: token, ExpiresAt: expires, User: u}, nil
}

// Authenticate implements auth.Authenticator for the platform middleware.
func (s *Service) Authenticate(ctx context.Context, token string) (auth.Identity, error) {
	hash, ok := hashToken(token)
	if !ok {
		return auth.Identity{}, auth.ErrInvalidToken
	}
	key := tokenKey(hash)
	if id, ok := s.sessions.lookup(key); ok {
		return id, nil
	}
	gen, cacheable := s.sessions.begin()
	su, err := s.store.sessionUser(ctx, hash)
	if errors.Is(err, errNoUser) {
		return auth.Identity{}, auth.ErrInvalidToken
	}
	if err != nil {
		return auth.Identity{}, err
	}
	roles := []string{}
	if su.Roles != "" {
		roles = splitRoles(su.Roles)
	}
	id := auth.Identity{UserID: su.UserID, Username: su.Username, Roles: roles}
	if cacheable {
		s.sessions.keep(key, id, su.ExpiresAt, gen)
	}
	return id, nil
}

// Logout revokes the caller's token: it stops working at once.
func (s *Service) Logout(ctx context.Context, token string) error {
	hash, ok := hashToken(token)
	if !ok {
		return nil
	}
	if err := s.store.revokeSession(ctx, hash); err != nil {
		return err
	}
	s.settle(ctx)
	return nil
}

// Me returns the caller's account.
func (s *Service) Me(ctx context.Context, id auth.Identity) (User, error) {
	u, err := s.store.userByID(ctx, id.UserID)
	if errors.Is(err, errNoUser) {
		return User{}, apperr.Unauthorized("this account no longer exists")
	}
	return u, err
}

// errNoSuchUser is what a caller gets for an account that does not exist
// or is not theirs to see.
var errNoSuchUser = apperr.NotFound("no such user")

// GetUser returns an account to staff, or to its owner; to anyone else it
// does not exist.
func (s *Service) GetUser(ctx context.Context, caller auth.Identity, userID string) (User, error) {
	parsed, err := uuid.Parse(userID)
	if err != nil || (parsed.String() != caller.UserID && !caller.HasRole(auth.RoleAdmin)) {
		return User{}, errNoSuchUser
	}
	u, err := s.store.userByID(ctx, parsed.String())
	if errors.Is(err, errNoUser) {
		return User{}, errNoSuchUser
	}
	return u, err
}

// SetRoles replaces a user's roles. An admin cannot take the admin role
// away from themselves, so a shop never locks out its last operator by accident.
func (s *Service) SetRoles(ctx context.Context, caller auth.Identity, userID string, roles []string) (User, error) {
	parsed, err := uuid.Parse(userID)
	if err != nil {
		return User{}, errNoSuchUser
	}
	userID = parsed.String() // canonical, so the self-demotion check below cannot be dodged
	// Counted as sent, as the OpenAPI document's maxItems counts them.
	if len(roles) > 10 {
		return User{}, apperr.InvalidField("roles", "at most 10 roles")
	}
	roles = dedupe(roles)
	if userID == caller.UserID && !slices.Contains(roles, auth.RoleAdmin) {
		return User{}, apperr.Conflict("you cannot remove your own admin role; ask another admin")
	}
	switch err := s.store.setRoles(ctx, userID, roles, s.announce(ctx)); {
	case errors.Is(err, errNoUser):
		return User{}, errNoSuchUser
	case errors.Is(err, errUnknownRole):
		known, _ := s.store.roleNames(ctx)
		return User{}, apperr.InvalidField("roles", "unknown role; known roles: "+strings.Join(known, ", "))
	case err != nil:
		return User{}, err
	}
	s.settle(ctx)
	return s.store.userByID(ctx, userID)
}

// UserPage is one page of the staff user list.
type UserPage struct {
	Items      []User  `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

// maxSearchLen bounds the staff list's search term.
const maxSearchLen = 100

// ListUsers pages through every account for staff, or through those whose
// username, e-mail or display name contain search.
func (s *Service) ListUsers(ctx context.Context, search, from string, limit int) (UserPage, error) {
	search = strings.TrimSpace(search)
	if utf8.RuneCountInString(search) > maxSearchLen || !utf8.ValidString(search) || strings.ContainsRune(search, 0) {
		return UserPage{}, apperr.InvalidField("q", "must be at most 100 characters of text")
	}
	var after *cursor.Keyset
	if from != "" {
		c, err := cursor.Decode(from)
		if err != nil {
			return UserPage{}, apperr.Malformed("the cursor is not one this API gave out")
		}
		after = &c
	}
	users, err := s.store.listUsers(ctx, search, after, limit+1)
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Items: users}
	if len(users) > limit {
		page.Items = users[:limit]
		last := page.Items[limit-1]
		next := cursor.Encode(cursor.Keyset{CreatedAt: last.CreatedAt, ID: last.ID})
		page.NextCursor = &next
	}
	return page, nil
}

// newToken returns a random session token and the hash that is stored.
func newToken() (string, []byte, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", nil, fmt.Errorf("session token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(token))
	return token, sum[:], nil
}

// hashToken hashes a presented token, refusing anything that is not shaped
// like one of ours before it reaches the database.
func hashToken(token string) ([]byte, bool) {
	if len(token) != 43 {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.DecodeString(token); err != nil {
		return nil, false
	}
	sum := sha256.Sum256([]byte(token))
	return sum[:], true
}

func splitRoles(s string) []string { return strings.Split(s, ",") }

func dedupe(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// truncate cuts s to at most n bytes of valid UTF-8.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// clientBucket is the throttle key of a client address: the address itself,
// or for IPv6 its /64, which one client usually controls whole.
func clientBucket(addr string) string {
	ip := net.ParseIP(addr)
	if ip == nil || ip.To4() != nil {
		return addr
	}
	return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
