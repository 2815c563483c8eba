package accounts

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
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
	// MaxDisplayNameLen bounds a display name, in characters.
	MaxDisplayNameLen = 100
)

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,50}$`)

// Registration is what a new customer sends.
type Registration struct {
	Username string `json:"username"`
	// DisplayName is optional: "" leaves the account without one.
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
	Password    string `json:"password"`
}

// normalise trims what users add by accident and lower-cases the e-mail,
// which is compared case-insensitively.
func (r Registration) normalise() Registration {
	r.Username = strings.TrimSpace(r.Username)
	r.DisplayName = strings.TrimSpace(r.DisplayName)
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

	if msg := displayNameProblem(r.DisplayName); msg != "" {
		add("display_name", msg)
	}
	if msg := emailProblem(r.Email); msg != "" {
		add("email", msg)
	}
	errs = append(errs, validatePassword(r.Password, r.Username, r.Email)...)
	return errs
}

// emailProblem says what is wrong with a normalised e-mail address, or "".
func emailProblem(email string) string {
	switch {
	case email == "":
		return "is required"
	case len(email) > maxEmailLen:
		return "must be at most 100 characters"
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@')+1:], ".") {
		return "must be an e-mail address such as name@example.com"
	}
	return ""
}

// displayNameProblem says what is wrong with a trimmed display name, or
// "": it is shown to staff and on pages, so no control characters.
func displayNameProblem(name string) string {
	switch {
	case utf8.RuneCountInString(name) > MaxDisplayNameLen:
		return "must be at most 100 characters"
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "must be plain text on one line"
	}
	return ""
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
