package money_test

import (
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/money"
)

func TestParseCurrency(t *testing.T) {
	for _, tc := range []struct {
		in, want, refusal string
	}{
		{in: "EUR", want: "EUR"},
		{in: "USD", want: "USD"},
		{in: "CHF", want: "CHF"},
		{in: "usd", want: "USD"},
		{in: " gbp ", want: "GBP"},
		{in: "JPY", refusal: "two decimals"},
		{in: "KWD", refusal: "two decimals"},
		{in: "XXX", refusal: "two decimals"},
		{in: "EURO", refusal: "not an ISO 4217"},
		{in: "€", refusal: "not an ISO 4217"},
		{in: "", refusal: "not an ISO 4217"},
		{in: "E1R", refusal: "not an ISO 4217"},
	} {
		got, err := money.ParseCurrency(tc.in)
		switch {
		case tc.refusal == "" && (err != nil || got != tc.want):
			t.Errorf("ParseCurrency(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case tc.refusal != "" && (err == nil || !strings.Contains(err.Error(), tc.refusal)):
			t.Errorf("ParseCurrency(%q) = %q, %v; want an error saying %q", tc.in, got, err, tc.refusal)
		}
	}
}

func TestCurrencyDefaultsToEUR(t *testing.T) {
	if got := money.Currency(""); got != "EUR" {
		t.Errorf(`Currency("") = %q, want EUR`, got)
	}
	if got := money.Currency("USD"); got != "USD" {
		t.Errorf(`Currency("USD") = %q, want USD`, got)
	}
}
