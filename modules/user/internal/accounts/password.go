package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1
// lane). Stored with each hash, so they can be raised later without
// invalidating existing passwords.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

var b64 = base64.RawStdEncoding

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("unrecognised password hash")

// Bounds on the parameters VerifyPassword accepts from a stored hash. The
// argon2 package panics on zero passes or lanes, and a hash asking for
// terabytes of memory would take the process down; a key or salt too short
// would make a match likely by chance.
const (
	maxArgonMemoryKiB = 1 << 21 // 2 GiB
	maxArgonTime      = 64
	minArgonSaltLen   = 8
	minArgonKeyLen    = 16
	maxArgonKeyLen    = 128
)

// VerifyPassword reports whether password matches an argon2id PHC hash,
// comparing in constant time. It honours the parameters stored in the hash
// and refuses a hash whose parameters are out of bounds.
func VerifyPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false, errBadHash
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errBadHash
	}
	var mem, iters uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &iters, &threads); err != nil ||
		parts[3] != fmt.Sprintf("m=%d,t=%d,p=%d", mem, iters, threads) {
		return false, errBadHash
	}
	if threads < 1 || iters < 1 || iters > maxArgonTime || mem < 8*uint32(threads) || mem > maxArgonMemoryKiB {
		return false, errBadHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < minArgonSaltLen {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) < minArgonKeyLen || len(want) > maxArgonKeyLen {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want))) // #nosec G115 -- len(want) ≤ maxArgonKeyLen, checked above
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when a log-in names no account, so that an
// unknown user costs the same time as a wrong password.
var dummyHash = func() string {
	h, err := HashPassword("modshop-timing-equaliser")
	if err != nil {
		panic(err)
	}
	return h
}()
