package accounts

import (
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/apperr"
)

func fieldMessages(errs []apperr.FieldError) map[string]string {
	out := map[string]string{}
	for _, e := range errs {
		out[e.Field] = e.Message
	}
	return out
}

func TestRegistration_ValidateNamesEachInvalidField(t *testing.T) {
	t.Parallel()
	valid := Registration{Username: "alice_1", Email: "alice@example.com", Password: "a long enough secret"}
	tests := []struct {
		name   string
		change func(*Registration)
		want   map[string]string // field → part of its message; empty: valid
	}{
		{"valid", func(*Registration) {}, nil},
		{"username missing", func(r *Registration) { r.Username = "" }, map[string]string{"username": "required"}},
		{"username too short", func(r *Registration) { r.Username = "al" }, map[string]string{"username": "3 to 50"}},
		{"username of 50", func(r *Registration) { r.Username = strings.Repeat("a", 50) }, nil},
		{"username of 51", func(r *Registration) { r.Username = strings.Repeat("a", 51) }, map[string]string{"username": "3 to 50"}},
		{"username with a space", func(r *Registration) { r.Username = "al ice" }, map[string]string{"username": "letters, digits"}},
		{"username with an @", func(r *Registration) { r.Username = "al@ice" }, map[string]string{"username": "letters, digits"}},
		{"username not ASCII", func(r *Registration) { r.Username = "alïce" }, map[string]string{"username": "letters, digits"}},
		{"email missing", func(r *Registration) { r.Email = "" }, map[string]string{"email": "required"}},
		{"email without @", func(r *Registration) { r.Email = "alice.example.com" }, map[string]string{"email": "e-mail address"}},
		{"email without a dot in the domain", func(r *Registration) { r.Email = "alice@localhost" }, map[string]string{"email": "e-mail address"}},
		{"email with a display name", func(r *Registration) { r.Email = "Alice <alice@example.com>" }, map[string]string{"email": "e-mail address"}},
		{"two addresses", func(r *Registration) { r.Email = "a@example.com, b@example.com" }, map[string]string{"email": "e-mail address"}},
		{"email with a NUL", func(r *Registration) { r.Email = "a\x00b@example.com" }, map[string]string{"email": "e-mail address"}},
		{"email of 101 characters", func(r *Registration) { r.Email = strings.Repeat("a", 89) + "@example.com" }, map[string]string{"email": "at most 100"}},
		{"password missing", func(r *Registration) { r.Password = "" }, map[string]string{"password": "required"}},
		{"password of 7", func(r *Registration) { r.Password = "1234567" }, map[string]string{"password": "at least 8"}},
		{"password of 8", func(r *Registration) { r.Password = "12345678" }, nil},
		{"password of 128", func(r *Registration) { r.Password = strings.Repeat("x", 128) }, nil},
		{"password of 129", func(r *Registration) { r.Password = strings.Repeat("x", 129) }, map[string]string{"password": "at most 128"}},
		// Length is counted in characters, not bytes: 7 two-byte letters are
		// too short, 128 of them are fine.
		{"7 accented letters", func(r *Registration) { r.Password = strings.Repeat("é", 7) }, map[string]string{"password": "at least 8"}},
		{"128 accented letters", func(r *Registration) { r.Password = strings.Repeat("é", 128) }, nil},
		{"no composition rules", func(r *Registration) { r.Password = "alllowercase" }, nil},
		{"password is the username", func(r *Registration) { r.Username, r.Password = "alice_12", "ALICE_12" }, map[string]string{"password": "username or e-mail"}},
		{"password is the email", func(r *Registration) { r.Password = "Alice@Example.com" }, map[string]string{"password": "username or e-mail"}},
		{"everything wrong at once", func(r *Registration) { *r = Registration{Username: "x", Email: "nope", Password: "short"} },
			map[string]string{"username": "3 to 50", "email": "e-mail address", "password": "at least 8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := valid
			tt.change(&r)
			got := fieldMessages(r.normalise().validate())
			if len(got) != len(tt.want) {
				t.Fatalf("validate(%+v) = %v, want errors on %v", r, got, tt.want)
			}
			for field, part := range tt.want {
				if !strings.Contains(got[field], part) {
					t.Errorf("error on %s = %q, want it to say %q", field, got[field], part)
				}
			}
		})
	}
}

func TestRegistration_NormaliseTrimsNamesAndLowercasesEmail(t *testing.T) {
	t.Parallel()
	r := Registration{Username: "  Alice_1 ", Email: " Alice@Example.COM\t", Password: " keep my spaces "}.normalise()
	if r.Username != "Alice_1" {
		t.Errorf("username = %q, want %q (trimmed, case kept)", r.Username, "Alice_1")
	}
	if r.Email != "alice@example.com" {
		t.Errorf("email = %q, want %q", r.Email, "alice@example.com")
	}
	if r.Password != " keep my spaces " {
		t.Errorf("password = %q: a password must be kept exactly as typed", r.Password)
	}
	if errs := r.validate(); len(errs) != 0 {
		t.Errorf("normalised registration is invalid: %v", errs)
	}
}
