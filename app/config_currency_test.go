package app

import (
	"strings"
	"testing"
)

// MODSHOP_CURRENCY is an ISO 4217 code of a currency with two decimals
// (amounts are NUMERIC(10,2)); lower case reads as the code it spells.
// Anything else is refused at start, naming the setting.
func TestConfig_CurrencyIsChecked(t *testing.T) {
	t.Parallel()
	if got := DefaultConfig().Currency; got != "EUR" {
		t.Errorf("default currency %q, want EUR", got)
	}
	for _, tc := range []struct {
		setting, modules, refusal string
	}{
		{setting: "EUR", modules: "EUR"},
		{setting: "USD", modules: "USD"},
		{setting: "SEK", modules: "SEK"},
		{setting: "usd", modules: "USD"},
		{setting: "JPY", refusal: "two decimals"},
		{setting: "KWD", refusal: "two decimals"},
		{setting: "EURO", refusal: "ISO 4217"},
		{setting: "", refusal: "ISO 4217"},
	} {
		c := DefaultConfig()
		c.Currency = tc.setting
		err := c.validate()
		if tc.refusal != "" {
			if err == nil || !strings.Contains(err.Error(), "MODSHOP_CURRENCY") || !strings.Contains(err.Error(), tc.refusal) {
				t.Errorf("MODSHOP_CURRENCY=%q: %v, want a refusal naming MODSHOP_CURRENCY and saying %q", tc.setting, err, tc.refusal)
			}
			continue
		}
		if err != nil {
			t.Errorf("MODSHOP_CURRENCY=%q refused: %v", tc.setting, err)
		}
		if got := c.currency(); got != tc.modules {
			t.Errorf("MODSHOP_CURRENCY=%q gives the modules %q, want %q", tc.setting, got, tc.modules)
		}
	}
}
