// Package money knows the currencies a shop can keep. Amounts are decimal
// strings stored as NUMERIC(10,2) in every module, so a shop's currency
// must have exactly two minor units: a yen price of "1.50" or a dinar
// price of "1.500" would not be an amount of that currency.
package money

import (
	"fmt"
	"slices"
	"strings"
)

// DefaultCurrency is the shop's currency when none is set.
const DefaultCurrency = "EUR"

// currencies are the ISO 4217 codes of currencies in use with two minor
// units. Those with none (JPY, KRW, ...) or three (KWD, BHD, ...) are left
// out on purpose.
var currencies = []string{
	"AED", "ARS", "AUD", "BAM", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK",
	"EGP", "EUR", "GBP", "GEL", "HKD", "HUF", "ILS", "INR", "MAD", "MXN", "MYR", "NOK",
	"NZD", "PEN", "PHP", "PLN", "RON", "RSD", "SAR", "SEK", "SGD", "THB", "TRY", "TWD",
	"UAH", "USD", "ZAR",
}

// ParseCurrency reads a shop currency: an ISO 4217 code of a currency with
// two minor units. Lower case is read as the code it spells ("usd" is
// USD): a code has no other meaning, and the shop shows it upper case.
func ParseCurrency(s string) (string, error) {
	code := strings.ToUpper(strings.TrimSpace(s))
	if len(code) != 3 || strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("%q is not an ISO 4217 currency code such as EUR or USD", s)
	}
	if !slices.Contains(currencies, code) {
		return "", fmt.Errorf("%s is not a currency the shop can keep: amounts have two decimals, so one of %s",
			code, strings.Join(currencies, ", "))
	}
	return code, nil
}

// Currency is the shop currency a module was configured with: code, or
// DefaultCurrency when code is "" (a module built without the setting, as
// in tests).
func Currency(code string) string {
	if code == "" {
		return DefaultCurrency
	}
	return code
}
