package fuzz_test

import (
	"strings"
	"testing"
)

func FuzzRegister(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/users", []byte(`{"username":"fuzz_first","email":"first@example.com","password":"a long password"}`))
	addBodies(f,
		`{"username":"fuzz_second","email":"second@example.com","password":"a long password"}`,
		`{"username":"$CUSTOMER_NAME","email":"other@example.com","password":"a long password"}`,               // taken
		`{"username":"fuzz_mail","email":"$CUSTOMER_EMAIL","password":"a long password"}`,                      // taken
		`{"username":"FUZZ_SECOND","email":"SECOND@EXAMPLE.COM","password":"a long password"}`,                 // taken, another case
		`{"username":"fuzz_admin","email":"admin@example.com","password":"a long password","roles":["admin"]}`, // mass assignment
		`{"username":"fuzz_admin2","email":"admin2@example.com","password":"a long password","admin":true}`,
		`{"username":"ab","email":"ab@example.com","password":"a long password"}`,
		`{"username":"`+strings.Repeat("u", 51)+`","email":"u@example.com","password":"a long password"}`,
		`{"username":"fuzz short","email":"s@example.com","password":"a long password"}`,
		`{"username":"fuzz_ü","email":"ü@exämple.com","password":"ein langes Passwort ☕"}`,
		`{"username":"fuzz_pw","email":"pw@example.com","password":"short"}`,
		`{"username":"fuzz_pw2","email":"pw2@example.com","password":"`+strings.Repeat("p", 129)+`"}`,
		`{"username":"fuzz_pw3","email":"pw3@example.com","password":"fuzz_pw3"}`,
		`{"username":"fuzz_nul","email":"nul@example.com","password":"a long\u0000password"}`,
		`{"username":"fuzz_mail2","email":"not an address","password":"a long password"}`,
		`{"username":"fuzz_mail3","email":"`+strings.Repeat("m", 95)+`@x.io","password":"a long password"}`,
		`{"username":"fuzz_mail4","email":"a@b@example.com","password":"a long password"}`,
		`{"username":1,"email":true,"password":["a long password"]}`,
		`{"username":null,"email":null,"password":null}`,
		`{"username":"fuzz_dup","username":"fuzz dup","email":"dup@example.com","password":"a long password"}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "POST", "/api/v1/users", s.fill(body))
	})
}

func FuzzLogin(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "POST", "/api/v1/sessions", []byte(`{"login":"$CUSTOMER_NAME","password":"$PASSWORD"}`))
	addBodies(f,
		`{"login":"$CUSTOMER_EMAIL","password":"$PASSWORD"}`,
		`{"login":"$CUSTOMER_NAME","password":"wrong password"}`,
		`{"login":"nobody","password":"$PASSWORD"}`,
		`{"login":"","password":""}`, `{"login":"$CUSTOMER_NAME"}`, `{"password":"$PASSWORD"}`,
		`{"login":"$CUSTOMER_NAME","password":"`+strings.Repeat("p", 100000)+`"}`,
		`{"login":"`+strings.Repeat("l", 100000)+`","password":"x"}`,
		`{"login":"$CUSTOMER_NAME\u0000","password":"$PASSWORD"}`,
		`{"login":"ü☕𝄞","password":"ü☕𝄞"}`,
		`{"login":"$CUSTOMER_NAME","password":"$PASSWORD","remember":true}`,
		`{"login":1,"password":2}`, `{"login":null,"password":null}`,
		`{"login":"nobody","login":"$CUSTOMER_NAME","password":"$PASSWORD"}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "POST", "/api/v1/sessions", s.fill(body))
	})
}

func FuzzSetRoles(f *testing.F) {
	s := startShop(f)
	s.reaches(f, "PUT", "/api/v1/users/$OTHER_ID/roles", []byte(`{"roles":["customer","admin"]}`), s.asAdmin())
	addBodies(f,
		`{"roles":["customer"]}`, `{"roles":[]}`, `{"roles":null}`, `{"roles":["admin","admin"]}`,
		`{"roles":["root"]}`, `{"roles":["Admin"]}`, `{"roles":[""]}`, `{"roles":[1]}`, `{"roles":"admin"}`,
		`{"roles":[["admin"]]}`, `{"roles":["customer","customer","customer","customer","customer","customer","customer","customer","customer","customer","customer"]}`,
		`{"roles":["`+strings.Repeat("r", 10000)+`"]}`, `{"roles":["admin\u0000"]}`,
		`{"roles":["customer"],"user_id":"$ADMIN_ID"}`, `{"roles":["admin"],"roles":[]}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.send(t, "PUT", s.placehold.Replace("/api/v1/users/$OTHER_ID/roles"), s.fill(body), s.asAdmin())
	})
}
