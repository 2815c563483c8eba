package catalog

import (
	"regexp"
	"strings"
)

// Prices are decimal strings end to end ("12.50"): parsed by pattern,
// stored as NUMERIC(10,2), read back as text. No float ever holds money.
var pricePattern = regexp.MustCompile(`^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$`)

// normalisePrice checks a price and writes it with two decimals. It refuses
// zero, negatives, more than two decimals and anything NUMERIC(10,2) cannot hold.
func normalisePrice(s string) (string, bool) {
	if !pricePattern.MatchString(s) {
		return "", false
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "00")[:2]
	if whole == "0" && frac == "00" {
		return "", false
	}
	return whole + "." + frac, true
}
