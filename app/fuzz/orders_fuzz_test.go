package fuzz_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

func FuzzPlaceOrder(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/orders", []byte(`{"items":[{"product_id":"$PRODUCT","quantity":2}],"payment_method":"pm_card_visa"}`), s.asCustomer())
	for _, body := range append(anyBodySeeds(),
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_chargeDeclined"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":100},{"product_id":"$PRICEY","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_unknown"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":""}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}]}`, `{"payment_method":"pm_card_visa"}`,
		`{"items":[],"payment_method":"pm_card_visa"}`, `{"items":null,"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":0}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":-1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":101}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":2147483648}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1e400}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1.5}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":"1"}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1},{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"00000000-0000-0000-0000-000000000000","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"not-a-uuid","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"{$PRODUCT}","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"urn:uuid:$PRODUCT","quantity":1}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":null,"quantity":null}],"payment_method":null}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1,"unit_price":"0.01"}],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa","total":"0.01","status":"confirmed"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"items":[],"payment_method":"pm_card_visa"}`,
		`{"items":[[{"product_id":"$PRODUCT","quantity":1}]],"payment_method":"pm_card_visa"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"`+strings.Repeat("p", 10000)+`"}`,
		`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa\u0000"}`,
		`{"items":[`+strings.Repeat(`{"product_id":"$PRODUCT","quantity":1},`, 50)+`{"product_id":"$PRICEY","quantity":1}],"payment_method":"pm_card_visa"}`,
	) {
		f.Add([]byte(body), "")
	}
	f.Add([]byte(`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa"}`), "key-1")
	f.Add([]byte(`{"items":[{"product_id":"$PRODUCT","quantity":2}],"payment_method":"pm_card_visa"}`), "key-1") // same key, another body
	f.Add([]byte(`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa"}`), strings.Repeat("k", 101))
	f.Add([]byte(`{"items":[{"product_id":"$PRODUCT","quantity":1}],"payment_method":"pm_card_visa"}`), "ключ")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		opts := []testkit.Option{s.asCustomer()}
		if key != "" {
			if !validHeader(key) {
				t.Skip("not a header value an HTTP client sends")
			}
			opts = append(opts, testkit.Header("Idempotency-Key", key))
		}
		body = s.fill(body)
		s.send(t, "POST", "/api/v1/orders", body, opts...)
	})
}

// validHeader reports whether Go's HTTP client sends v as a header value
// (it refuses control characters).
func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzCancelOrder fuzzes the order id of a cancel (the route reads no
// body): "$NEW_ORDER" is an order placed for the input, still waiting for
// its payment, "$ORDER" one already final.
func FuzzCancelOrder(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/orders/"+s.newOrder(f)+"/cancel", nil, s.asCustomer())
	for _, id := range []string{"$NEW_ORDER", "$ORDER", "00000000-0000-0000-0000-000000000000", "$OTHER_ID", "not-a-uuid",
		"{$ORDER}", "urn:uuid:$ORDER", "$ORDER ", " ", "..", "%00", "\x00", "ü", strings.Repeat("9", 1000)} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if strings.Contains(id, "$NEW_ORDER") {
			id = strings.ReplaceAll(id, "$NEW_ORDER", s.newOrder(t))
		}
		s.send(t, "POST", "/api/v1/orders/"+url.PathEscape(s.placehold.Replace(id))+"/cancel", nil, s.asCustomer())
	})
}
