package orders

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/modshop/modshop/platform/apperr"
)

// PickupCode is the built-in shipping method: collected in store, free,
// no address. A place request without shipping_method means it, so the
// clients that predate shipping keep working.
const PickupCode = "pickup"

// ShippingMethod is one way an order reaches its customer, at a price.
type ShippingMethod struct {
	Code         string `json:"code"`
	Label        string `json:"label"`
	Price        string `json:"price"` // decimal, e.g. "4.90"
	NeedsAddress bool   `json:"needs_address"`
}

var pickup = ShippingMethod{Code: PickupCode, Label: "Collect in store", Price: "0.00"}

var (
	methodCodePattern  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)
	methodPricePattern = regexp.MustCompile(`^[0-9]{1,6}\.[0-9]{2}$`)
)

// ParseShippingMethods reads MODSHOP_SHIPPING_METHODS: comma-separated
// code=label:price entries (standard=Standard delivery:4.90), each a
// method that delivers to an address. pickup is built in and may not be
// redefined; "" is pickup alone.
func ParseShippingMethods(spec string) ([]ShippingMethod, error) {
	var out []ShippingMethod
	if strings.TrimSpace(spec) == "" {
		return out, nil
	}
	for _, entry := range strings.Split(spec, ",") {
		code, rest, ok := strings.Cut(strings.TrimSpace(entry), "=")
		colon := strings.LastIndex(rest, ":")
		if !ok || colon < 0 {
			return nil, fmt.Errorf("%q: want code=label:price, such as standard=Standard delivery:4.90", entry)
		}
		m := ShippingMethod{Code: code, Label: strings.TrimSpace(rest[:colon]), Price: rest[colon+1:], NeedsAddress: true}
		switch {
		case !methodCodePattern.MatchString(m.Code):
			return nil, fmt.Errorf("%q: the code must be 1 to 20 lower-case letters, digits or _, starting with a letter", entry)
		case m.Code == PickupCode:
			return nil, fmt.Errorf("%q: pickup is built in (collect in store, 0.00)", entry)
		case slices.ContainsFunc(out, func(o ShippingMethod) bool { return o.Code == m.Code }):
			return nil, fmt.Errorf("%q: method %s is listed twice", entry, m.Code)
		case m.Label == "" || utf8.RuneCountInString(m.Label) > 40 || hasControl(m.Label):
			return nil, fmt.Errorf("%q: the label must be 1 to 40 printable characters", entry)
		case !methodPricePattern.MatchString(m.Price):
			return nil, fmt.Errorf("%q: the price must be a decimal with two places, such as 4.90, below 1000000", entry)
		}
		out = append(out, m)
	}
	return out, nil
}

// Address is where an order is shipped to.
type Address struct {
	Name       string `json:"name"`
	Line1      string `json:"line1"`
	Line2      string `json:"line2"`
	PostalCode string `json:"postal_code"`
	City       string `json:"city"`
	Country    string `json:"country"` // ISO 3166-1 alpha-2, upper case
}

// addressField is one part of an address and its bounds.
type addressField struct {
	name     string
	value    *string
	required bool
	max      int
}

var postalCodePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 -]*$`)

// validateShipping checks the shipping method and address of a request
// against methods and trims the address's parts. pickup becomes "": a
// request naming it is the request without a method, so both have the
// same idempotency hash, the one they had before shipping existed.
func (p *PlaceOrder) validateShipping(methods []ShippingMethod) []apperr.FieldError {
	var errs []apperr.FieldError
	add := func(f, m string) { errs = append(errs, apperr.FieldError{Field: f, Message: m}) }
	if p.ShippingMethod == PickupCode {
		p.ShippingMethod = ""
	}
	m, ok := methodOf(methods, p.ShippingMethod)
	if !ok {
		codes := make([]string, len(methods))
		for i, m := range methods {
			codes[i] = m.Code
		}
		add("shipping_method", "must be one of "+strings.Join(codes, ", "))
		return errs
	}
	a := p.ShippingAddress
	switch {
	case !m.NeedsAddress && a != nil:
		add("shipping_address", "collected in store: send no address")
		return errs
	case m.NeedsAddress && a == nil:
		add("shipping_address", m.Label+" needs an address")
		return errs
	case a == nil:
		return errs
	}
	for _, f := range []addressField{
		{"name", &a.Name, true, 100}, {"line1", &a.Line1, true, 100}, {"line2", &a.Line2, false, 100},
		{"postal_code", &a.PostalCode, false, 16}, {"city", &a.City, true, 60}, {"country", &a.Country, true, 2},
	} {
		*f.value = strings.TrimSpace(*f.value)
		v, field := *f.value, "shipping_address."+f.name
		switch {
		case f.required && v == "":
			add(field, "required")
		case !utf8.ValidString(v) || hasControl(v):
			add(field, "must not hold control characters")
		case utf8.RuneCountInString(v) > f.max:
			add(field, fmt.Sprintf("at most %d characters", f.max))
		case f.name == "postal_code" && v != "" && !postalCodePattern.MatchString(v):
			add(field, "letters, digits, spaces and hyphens only")
		case f.name == "country" && !slices.Contains(countryCodes, v):
			add(field, "must be an ISO 3166-1 alpha-2 country code in upper case, such as DE")
		}
	}
	return errs
}

// methodOf finds a method by code; "" is pickup.
func methodOf(methods []ShippingMethod, code string) (ShippingMethod, bool) {
	if code == "" {
		code = PickupCode
	}
	i := slices.IndexFunc(methods, func(m ShippingMethod) bool { return m.Code == code })
	if i < 0 {
		return ShippingMethod{}, false
	}
	return methods[i], true
}

// hasControl reports whether s holds a control character (a line break,
// a tab, a NUL...): none belongs on a label or a parcel.
func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }
