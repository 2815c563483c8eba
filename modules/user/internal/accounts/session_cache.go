package accounts

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/modshop/modshop/platform/auth"
)

// sessionCache keeps the session lookup's answers (token → account, roles)
// so that a request need not ask the database who its caller is. It
// answers only while the listener (session_listener.go) is connected and
// listening to the changes the database announces (migration user 0005):
// every change that can make an answer wrong (a session ended, an account
// suspended or deleted, a role granted or taken) drops the answers about
// that account as its notification arrives, and whenever the listener is
// not listening the cache is empty and asks nothing of itself. An answer
// lives at most maxAge, and never past its session's expiry. See
// docs/adr/0041-session-cache.md.
type sessionCache struct {
	maxAge     time.Duration
	maxEntries int
	now        func() time.Time

	// freshFor is how long the cache answers after it last heard from its
	// listener (a notification, or a ping that succeeded): a listener
	// that stalls (its process starved, its connection silently gone)
	// stops the cache's answers within it, and it is no longer than a
	// settle waits, so a change that settles without a listener's
	// acknowledgement finds that listener's cache answering nothing.
	freshFor time.Duration

	mu      sync.Mutex
	heard   time.Time // when the listener last showed it is listening
	live    bool      // the listener listens: answers may be kept and given
	gen     uint64    // bumped by every change announced, connect and disconnect
	entries map[tokenKey]cachedSession
	byUser  map[string]map[tokenKey]struct{}
	// barriers are the settles waiting for acknowledgements, by nonce.
	barriers map[string]chan struct{}
}

// tokenKey is a session token's SHA-256, as the sessions table keeps it.
type tokenKey [32]byte

type cachedSession struct {
	id    auth.Identity
	until time.Time
}

// The cache's bounds: an answer's longest life, and the most answers kept
// (beyond it the cache starts empty again: a bound, not an eviction policy).
const (
	sessionCacheMaxAge  = 5 * time.Second
	sessionCacheEntries = 100_000
)

func newSessionCache(now func() time.Time) *sessionCache {
	return &sessionCache{
		maxAge: sessionCacheMaxAge, maxEntries: sessionCacheEntries, now: now, freshFor: settleWaitLimit,
		entries: map[tokenKey]cachedSession{}, byUser: map[string]map[tokenKey]struct{}{},
		barriers: map[string]chan struct{}{},
	}
}

// lookup returns the kept answer for key, if the cache is live and holds
// one that has not run out.
func (c *sessionCache) lookup(key tokenKey) (auth.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.answers() {
		return auth.Identity{}, false
	}
	e, ok := c.entries[key]
	if !ok {
		return auth.Identity{}, false
	}
	if !c.now().Before(e.until) {
		c.drop(key, e.id.UserID)
		return auth.Identity{}, false
	}
	id := e.id
	id.Roles = slices.Clone(id.Roles)
	return id, true
}

// begin is called before the database is asked: keep takes the answer
// only if nothing was announced (and the listener did not come or go)
// since, so an answer read before a change cannot outlive it. ok is false
// when the cache is not live.
func (c *sessionCache) begin() (gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, c.answers()
}

// answers reports whether the cache may keep and give answers: its
// listener listens and was heard from within freshFor. c.mu is held.
func (c *sessionCache) answers() bool {
	return c.live && c.now().Sub(c.heard) <= c.freshFor
}

// heardFrom notes that the listener is listening (its ping succeeded).
func (c *sessionCache) heardFrom() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heard = c.now()
}

// keep stores the database's answer for key, valid until the session
// expires or maxAge passes, whichever comes first.
func (c *sessionCache) keep(key tokenKey, id auth.Identity, expires time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.answers() || gen != c.gen {
		return
	}
	until := c.now().Add(c.maxAge)
	if expires.Before(until) {
		until = expires
	}
	if len(c.entries) >= c.maxEntries {
		c.clear()
	}
	id.Roles = slices.Clone(id.Roles)
	c.entries[key] = cachedSession{id: id, until: until}
	keys := c.byUser[id.UserID]
	if keys == nil {
		keys = map[tokenKey]struct{}{}
		c.byUser[id.UserID] = keys
	}
	keys[key] = struct{}{}
}

// changed drops what the cache keeps about the account a notification
// names ("*": every account). A settle's barrier changes nothing; an
// acknowledgement of one counts for the settle waiting for it.
func (c *sessionCache) changed(payload string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heard = c.now()
	if strings.HasPrefix(payload, barrierPrefix) {
		return
	}
	if nonce, ok := strings.CutPrefix(payload, ackPrefix); ok {
		if acks, ok := c.barriers[nonce]; ok {
			select {
			case acks <- struct{}{}:
			default: // more acknowledgements than listeners counted: enough
			}
		}
		return
	}
	c.gen++
	if payload == "*" {
		c.clear()
		return
	}
	for key := range c.byUser[payload] {
		delete(c.entries, key)
	}
	delete(c.byUser, payload)
}

// setLive turns the cache on when the listener starts listening and off
// when it stops; either way it starts empty.
func (c *sessionCache) setLive(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	c.heard = c.now()
	c.gen++
	c.clear()
}

// isLive reports whether the cache answers.
func (c *sessionCache) isLive() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// expect registers a settle's barrier: the returned channel receives
// one value per listener that acknowledges it. ok is false when this
// process's listener is not listening (no acknowledgement can be heard).
func (c *sessionCache) expect(nonce string) (acks <-chan struct{}, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return nil, false
	}
	ch := make(chan struct{}, 1024)
	c.barriers[nonce] = ch
	return ch, true
}

// unexpect withdraws a barrier nobody waits for any more.
func (c *sessionCache) unexpect(nonce string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.barriers, nonce)
}

func (c *sessionCache) drop(key tokenKey, userID string) {
	delete(c.entries, key)
	if keys := c.byUser[userID]; keys != nil {
		delete(keys, key)
		if len(keys) == 0 {
			delete(c.byUser, userID)
		}
	}
}

func (c *sessionCache) clear() {
	clear(c.entries)
	clear(c.byUser)
}

// size is how many answers the cache keeps (for tests).
func (c *sessionCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
