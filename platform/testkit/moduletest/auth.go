package moduletest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/modshop/modshop/platform/auth"
)

// FakeAuth is an auth.Authenticator for modules other than the user
// module: it knows the tokens the test made, each for one caller.
type FakeAuth struct {
	mu     sync.Mutex
	tokens map[string]auth.Identity
	n      int
}

var _ auth.Authenticator = (*FakeAuth)(nil)

// NewFakeAuth returns an authenticator that knows no token yet.
func NewFakeAuth() *FakeAuth { return &FakeAuth{tokens: map[string]auth.Identity{}} }

// Authenticate resolves a token made by Token, Customer or Admin; any
// other is auth.ErrInvalidToken, as an unknown or expired session is.
func (f *FakeAuth) Authenticate(_ context.Context, token string) (auth.Identity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.tokens[token]
	if !ok {
		return auth.Identity{}, auth.ErrInvalidToken
	}
	return id, nil
}

// Token makes a session token for id.
func (f *FakeAuth) Token(id auth.Identity) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokens[token] = id
	return token
}

// Revoke forgets a token, as logging out does.
func (f *FakeAuth) Revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tokens, token)
}

// Customer makes a new customer and returns its user id and a token.
func (f *FakeAuth) Customer() (id, token string) {
	return f.caller("customer", "customer")
}

// Admin makes a new member of staff (roles customer and admin) and returns
// its user id and a token.
func (f *FakeAuth) Admin() (id, token string) {
	return f.caller("admin", "customer", auth.RoleAdmin)
}

func (f *FakeAuth) caller(prefix string, roles ...string) (string, string) {
	f.mu.Lock()
	f.n++
	name := fmt.Sprintf("%s%d", prefix, f.n)
	f.mu.Unlock()
	id := uuid.NewString()
	return id, f.Token(auth.Identity{UserID: id, Username: name, Roles: roles})
}
