package app_test

import (
	"net/http"
	"testing"

	"github.com/modshop/modshop/app/apptest"
)

// The README's log-in body: {"login": username or e-mail, "password": …};
// a client that guesses another field name is told the right ones.
func TestLogIn_TheBodyTheREADMEDocuments(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t)
	name := apptest.Unique("reader")
	const password = "correct horse battery"
	if _, err := shop.CreateUser(t.Context(), name, name+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{name, name + "@example.com"} {
		r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": password})
		if r.Status != http.StatusCreated {
			t.Errorf(`log in with {"login": %q}: %d %s`, login, r.Status, r.Body)
		}
	}
	r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"username": name, "password": password})
	if r.Status != http.StatusBadRequest {
		t.Fatalf(`log in with {"username": …}: %d %s, want 400`, r.Status, r.Body)
	}
	want := `unknown field "username"; the fields are "login", "password"`
	if got := r.Problem(t)["detail"]; got != want {
		t.Errorf("detail %q, want %q", got, want)
	}
}
