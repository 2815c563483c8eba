package accounts

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// phcArgon2id is the shape of what HashPassword stores: argon2id, version
// 19, our parameters, a 16-byte salt and a 32-byte key, unpadded base64.
var phcArgon2id = regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashPassword_StoresArgon2idInPHCFormat(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !phcArgon2id.MatchString(h) {
		t.Fatalf("hash %q is not an argon2id PHC string with m=19456,t=2,p=1", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatalf("hash %q contains the password", h)
	}
}

func TestHashPassword_SaltsEveryHash(t *testing.T) {
	t.Parallel()
	a, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	b, err := HashPassword("same password")
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("two hashes of one password are equal (%q): no salt", a)
	}
	for _, h := range []string{a, b} {
		if ok, err := VerifyPassword("same password", h); !ok || err != nil {
			t.Errorf("VerifyPassword(right password, %q) = %v, %v; want true, nil", h, ok, err)
		}
	}
}

func TestVerifyPassword_AcceptsOnlyTheRightPassword(t *testing.T) {
	t.Parallel()
	const password = "Tr0ub4dor & 3 — ünïcödé"
	h, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, attempt string
		want          bool
	}{
		{"the password", password, true},
		{"another password", "correct horse battery", false},
		{"empty", "", false},
		{"other case", strings.ToUpper(password), false},
		{"trailing space", password + " ", false},
		{"one rune short", password[:len(password)-len("é")], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(tt.attempt, h)
			if err != nil {
				t.Fatalf("VerifyPassword: %v", err)
			}
			if ok != tt.want {
				t.Errorf("VerifyPassword(%q) = %v, want %v", tt.attempt, ok, tt.want)
			}
		})
	}
}

// phc builds an argon2id hash with the given parameters, as an older or
// newer modshop (or another argon2id library) would have stored it.
func phc(t *testing.T, password string, m, iters uint32, p uint8, keyLen uint32) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(password), salt, iters, m, p, keyLen)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, iters, p,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestVerifyPassword_HonoursTheParametersStoredInTheHash(t *testing.T) {
	t.Parallel()
	// Parameters other than HashPassword's: raising them later must not
	// lock out users whose hashes were made with the old ones.
	h := phc(t, "an older password", 8*1024, 1, 2, 24)
	if ok, err := VerifyPassword("an older password", h); !ok || err != nil {
		t.Fatalf("VerifyPassword(hash with m=8192,t=1,p=2, 24-byte key) = %v, %v; want true, nil", ok, err)
	}
	// The same key under other parameters is another hash: no match.
	other := strings.Replace(h, "t=1", "t=2", 1)
	if ok, err := VerifyPassword("an older password", other); ok || err != nil {
		t.Fatalf("VerifyPassword(hash with t changed) = %v, %v; want false, nil", ok, err)
	}
}

func TestVerifyPassword_TamperedKeyOrSaltDoesNotMatch(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(h, "$")
	flip := func(s string) string {
		if s[0] == 'A' {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	for name, tampered := range map[string]string{
		"salt": strings.Join([]string{"", parts[1], parts[2], parts[3], flip(parts[4]), parts[5]}, "$"),
		"key":  strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], flip(parts[5])}, "$"),
	} {
		if ok, err := VerifyPassword("correct horse battery", tampered); ok || err != nil {
			t.Errorf("VerifyPassword(right password, hash with tampered %s) = %v, %v; want false, nil", name, ok, err)
		}
	}
}

func TestVerifyPassword_RefusesHashesItCannotTrust(t *testing.T) {
	t.Parallel()
	good := phc(t, "pw", 8*1024, 1, 1, 32)
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	with := func(version, params, s, k string) string {
		return strings.Join([]string{"", "argon2id", version, params, s, k}, "$")
	}
	tests := map[string]string{
		"empty":                "",
		"bcrypt":               "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":              strings.Replace(good, "argon2id", "argon2i", 1),
		"old argon2 version":   with("v=16", "m=8192,t=1,p=1", salt, key),
		"junk after version":   with("v=19x", "m=8192,t=1,p=1", salt, key),
		"zero passes":          with("v=19", "m=8192,t=0,p=1", salt, key),
		"zero lanes":           with("v=19", "m=8192,t=1,p=0", salt, key),
		"too many lanes":       with("v=19", "m=8192,t=1,p=300", salt, key),
		"memory below 8×lanes": with("v=19", "m=7,t=1,p=1", salt, key),
		"terabytes of memory":  with("v=19", "m=4294967295,t=1,p=1", salt, key),
		"absurd passes":        with("v=19", "m=8192,t=4000000000,p=1", salt, key),
		"junk after params":    with("v=19", "m=8192,t=1,p=1,x=2", salt, key),
		"salt not base64":      with("v=19", "m=8192,t=1,p=1", "!!!", key),
		"salt too short":       with("v=19", "m=8192,t=1,p=1", "c2FsdA", key),
		"key not base64":       with("v=19", "m=8192,t=1,p=1", salt, "!!!"),
		"key too short":        with("v=19", "m=8192,t=1,p=1", salt, "a2V5"),
		"a field too many":     good + "$extra",
		"no leading dollar":    strings.TrimPrefix(good, "$"),
	}
	for name, encoded := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword("pw", encoded)
			if ok || !errors.Is(err, errBadHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false, errBadHash", encoded, ok, err)
			}
		})
	}
}

func TestDummyHash_CostsWhatARealHashCosts(t *testing.T) {
	t.Parallel()
	// An unknown login is checked against dummyHash so that it takes as
	// long as a wrong password; that holds only with the same parameters.
	if !phcArgon2id.MatchString(dummyHash) {
		t.Fatalf("dummyHash %q does not use HashPassword's parameters", dummyHash)
	}
	if ok, err := VerifyPassword("anything", dummyHash); ok || err != nil {
		t.Fatalf("VerifyPassword(anything, dummyHash) = %v, %v; want false, nil", ok, err)
	}
}
