package fuzz_test

import (
	"strings"
	"testing"
)

func FuzzCreateCategory(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/categories", []byte(`{"slug":"mugs","name":"Mugs","parent":"$CATEGORY"}`), s.asAdmin())
	addBodies(f,
		`{"slug":"teapots","name":"Teapots"}`,
		`{"slug":"teacups","name":"Teacups","parent":"$CATEGORY"}`,
		`{"slug":"mugs","name":"Mugs again"}`,                    // taken
		`{"slug":"orphans","name":"Orphans","parent":"missing"}`, // no such parent
		`{"slug":"self","name":"Self","parent":"self"}`,
		`{"slug":"Mugs","name":"Capital"}`, `{"slug":"a--b","name":"Dashes"}`, `{"slug":"-a","name":"Dash"}`,
		`{"slug":"`+strings.Repeat("a", 61)+`","name":"Long slug"}`,
		`{"slug":"long-name","name":"`+strings.Repeat("ü", 81)+`"}`,
		`{"slug":"blank","name":"   "}`,
		`{"slug":"nul","name":"a\u0000b"}`,
		`{"slug":"unicode","name":"Tasses à café ☕ 𝄞 \u202eRTL\u200b"}`,
		`{"slug":"extra","name":"Extra","id":"00000000-0000-0000-0000-000000000000"}`, // unknown field
		`{"slug":1,"name":true}`, `{"slug":["a"],"name":{"x":1}}`,                     // wrong types
		`{"slug":null,"name":null,"parent":null}`,
		`{"slug":"dup","slug":"dup-2","name":"Duplicate keys"}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "POST", "/api/v1/categories", s.fill(body), s.asAdmin())
	})
}

// productBodySeeds are product fields at their edges, for creating and
// changing products.
var productBodySeeds = []string{
	`{"sku":"FZ-1","name":"Mug","description":"A mug.","price":"12.50","stock":3,"categories":["$CATEGORY"],"active":true}`,
	`{"sku":"FZ-2","name":"Mug","price":"0.01"}`,
	`{"sku":"FZ-3","name":"Mug","price":"99999999.99","stock":1000000}`,
	`{"sku":"FZ-MUG","name":"Taken SKU","price":"1.00"}`,
	`{"sku":"FZ-4","name":"Mug","price":"100000000.00"}`, `{"sku":"FZ-5","name":"Mug","price":"99999999999999999999999.99"}`,
	`{"sku":"FZ-6","name":"Mug","price":"0"}`, `{"sku":"FZ-7","name":"Mug","price":"-1.00"}`, `{"sku":"FZ-8","name":"Mug","price":"1.001"}`,
	`{"sku":"FZ-9","name":"Mug","price":"1e3"}`, `{"sku":"FZ-10","name":"Mug","price":"NaN"}`, `{"sku":"FZ-11","name":"Mug","price":"Infinity"}`,
	`{"sku":"FZ-12","name":"Mug","price":" 1.00 "}`, `{"sku":"FZ-13","name":"Mug","price":"١٢.٥٠"}`, `{"sku":"FZ-14","name":"Mug","price":12.5}`,
	`{"sku":"FZ-15","name":"Mug","price":"1.00","stock":-1}`, `{"sku":"FZ-16","name":"Mug","price":"1.00","stock":1000001}`,
	`{"sku":"FZ-17","name":"Mug","price":"1.00","stock":9223372036854775808}`, `{"sku":"FZ-18","name":"Mug","price":"1.00","stock":1.5}`,
	`{"sku":"FZ-19","name":"Mug","price":"1.00","stock":"3"}`, `{"sku":"FZ-20","name":"Mug","price":"1.00","stock":1e400}`,
	`{"sku":"fz-lower","name":"Mug","price":"1.00"}`, `{"sku":"` + strings.Repeat("A", 33) + `","name":"Mug","price":"1.00"}`,
	`{"sku":"FZ-21","name":"` + strings.Repeat("n", 121) + `","price":"1.00"}`,
	`{"sku":"FZ-22","name":"Mug","description":"` + strings.Repeat("d", 4001) + `","price":"1.00"}`,
	`{"sku":"FZ-23","name":"Tasse à café ☕ 𝄞","description":"\u0000","price":"1.00"}`,
	`{"sku":"FZ-24","name":"Mug","price":"1.00","categories":["missing","$CATEGORY","$CATEGORY"]}`,
	`{"sku":"FZ-25","name":"Mug","price":"1.00","categories":[["nested"]]}`,
	`{"sku":"FZ-26","name":"Mug","price":"1.00","categories":["a","b","c","d","e","f","g","h","i","j","k"]}`,
	`{"sku":"FZ-27","name":"Mug","price":"1.00","inventory":{"on_hand":5},"id":"$PRODUCT"}`, // unknown fields
	`{"sku":"FZ-28","sku":"FZ-29","name":"Mug","price":"1.00","price":"-1"}`,                // duplicate keys
	`{"sku":null,"name":null,"description":null,"price":null,"stock":null,"categories":null,"active":null}`,
	`{"name":"Renamed"}`, `{"price":"2.00"}`, `{"active":false}`, `{"active":true}`, `{"categories":[]}`, `{"categories":null}`,
	`{"description":"` + strings.Repeat("é", 4000) + `"}`, `{"name":"  "}`, `{"active":"false"}`,
}

func FuzzCreateProduct(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/products", []byte(`{"sku":"FZ-MUG","name":"Mug","price":"1.00","categories":["$CATEGORY"]}`), s.asAdmin())
	addBodies(f, productBodySeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "POST", "/api/v1/products", s.fill(body), s.asAdmin())
	})
}

func FuzzUpdateProduct(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "PATCH", "/api/v1/products/$PRODUCT", []byte(`{"name":"Ceramic mug","price":"10.00"}`), s.asAdmin())
	addBodies(f, productBodySeeds...)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "PATCH", s.placehold.Replace("/api/v1/products/$PRODUCT"), s.fill(body), s.asAdmin())
	})
}

func FuzzChangeStock(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/products/$PRODUCT/stock", []byte(`{"delta":5,"reason":"restock"}`), s.asAdmin())
	addBodies(f,
		`{"delta":-5,"reason":"broken"}`, `{"delta":0}`, `{"delta":1000000}`, `{"delta":1000001}`, `{"delta":-1000000}`,
		`{"delta":-2000000000}`, `{"delta":2147483648}`, `{"delta":9223372036854775807}`, `{"delta":-9223372036854775809}`,
		`{"delta":1.5}`, `{"delta":"5"}`, `{"delta":1e3}`, `{"delta":-0}`, `{"delta":null}`, `{"reason":"no delta"}`,
		`{"delta":1,"reason":"`+strings.Repeat("r", 201)+`"}`, `{"delta":1,"reason":"\u0000 ☕"}`,
		`{"delta":1,"on_hand":1000000000}`, `{"delta":1,"delta":-1000000}`, `{"delta":[1]}`, `{"delta":{"n":1}}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "POST", s.placehold.Replace("/api/v1/products/$PRODUCT/stock"), s.fill(body), s.asAdmin())
	})
}
