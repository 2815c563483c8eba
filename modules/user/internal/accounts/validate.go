package accounts

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/modshop/modshop/platform/apperr"
)

// Password policy, after NIST SP 800-63B: a length range and nothing
// absurd (no composition rules, no forced rotation).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
	maxEmailLen    = 100
	maxLoginLen    = 100
)

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,50}$`)

// Registration is what a new customer sends.
type Registration struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// normalise trims what users add by accident and lower-cases the e-mail,
// which is compared case-insensitively.
func (r Registration) normalise() Registration {
	r.Username = strings.TrimSpace(r.Username)
	r.Email = strings.ToLower(strings.TrimSpace(r.Email))
	return r
}

// validate lists every invalid field at once, so a form can show them all.
func (r Registration) validate() []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(field, msg string) { errs = append(errs, apperr.FieldError{Field: field, Message: msg}) }

	switch {
	case r.Username == "":
		add("username", "is required")
	case !usernamePattern.MatchString(r.Username):
		add("username", "must be 3 to 50 characters: letters, digits, '_', '.' or '-'")
	}

	switch {
	case r.Email == "":
		add("email", "is required")
	case len(r.Email) > maxEmailLen:
		add("email", "must be at most 100 characters")
	default:
		addr, err := mail.ParseAddress(r.Email)
		if err != nil || addr.Address != r.Email || !strings.Contains(r.Email[strings.LastIndexByte(r.Email, '@')+1:], ".") {
			add("email", "must be an e-mail address such as name@example.com")
		}
	}

	errs = append(errs, validatePassword(r.Password, r.Username, r.Email)...)
	return errs
}

func validatePassword(password, username, email string) []apperr.FieldError {
	n := utf8.RuneCountInString(password)
	var msg string
	switch {
	case password == "":
		msg = "is required"
	case n < MinPasswordLen:
		msg = "must be at least 8 characters"
	case n > MaxPasswordLen:
		msg = "must be at most 128 characters"
	case strings.EqualFold(password, username) || strings.EqualFold(password, email):
		msg = "must not be your username or e-mail address"
	default:
		return nil
	}
	return []apperr.FieldError{{Field: "password", Message: msg}}
}
