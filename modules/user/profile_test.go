package user_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/auth"
	"github.com/modshop/modshop/platform/testkit"
)

const password = "correct horse battery"

type accountJSON struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Email       string   `json:"email"`
	Roles       []string `json:"roles"`
	SuspendedAt *string  `json:"suspended_at"`
	SuspendedBy *string  `json:"suspended_by"`
}

// updates returns the user.updated.v1 events published for userID, oldest first.
func updates(t *testing.T, s *shop, userID string) []events.UserUpdated {
	t.Helper()
	rows, err := testkit.OpenSQL(t, s.DatabaseURL).Query(
		`SELECT payload::text FROM bus."m_user.updated.v1" WHERE payload->>'user_id' = $1 ORDER BY "offset"`, userID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.UserUpdated
	for rows.Next() {
		var payload string
		var ev events.UserUpdated
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func status(t *testing.T, r *testkit.Response, want int, what string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: %d %s, want %d", what, r.Status, r.Body, want)
	}
}

// field returns the problem's message for field, or "".
func field(t *testing.T, r *testkit.Response, name string) string {
	t.Helper()
	var p struct {
		Errors []struct{ Field, Message string } `json:"errors"`
	}
	r.Decode(t, &p)
	for _, e := range p.Errors {
		if e.Field == name {
			return e.Message
		}
	}
	return ""
}

func TestChangePassword_EndsEveryOtherSessionAndKeepsThisOne(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	name := unique("pw")
	if _, err := shop.module.CreateUser(context.Background(), name, name+"@example.com", password, false); err != nil {
		t.Fatal(err)
	}
	this, other := shop.Login(t, name, password), shop.Login(t, name, password)

	r := shop.API.Do("PUT", "/api/v1/users/me/password",
		map[string]string{"current_password": password, "new_password": "a brand new secret"}, testkit.Bearer(this))
	status(t, r, http.StatusNoContent, "change password")
	status(t, shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(this)), http.StatusOK, "me with the session that changed it")
	status(t, shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(other)), http.StatusUnauthorized, "me with another session")
	status(t, shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": password}),
		http.StatusUnauthorized, "log in with the old password")
	shop.Login(t, name, "a brand new secret")
}

func TestChangePassword_WrongCurrentIsRefusedAndThrottledLikeLogIn(t *testing.T) {
	t.Parallel()
	shop := startUser(t) // 5 attempts per account
	_, token := shop.Customer(t)

	r := shop.API.Do("PUT", "/api/v1/users/me/password",
		map[string]string{"current_password": password, "new_password": "short"}, testkit.Bearer(token))
	status(t, r, http.StatusUnprocessableEntity, "a too short new password")
	if field(t, r, "new_password") == "" {
		t.Errorf("the problem does not name new_password: %s", r.Body)
	}
	for i := range 5 {
		r = shop.API.Do("PUT", "/api/v1/users/me/password",
			map[string]string{"current_password": "not the password", "new_password": "a brand new secret"}, testkit.Bearer(token))
		status(t, r, http.StatusUnprocessableEntity, "wrong current password")
		if field(t, r, "current_password") == "" {
			t.Errorf("attempt %d: the problem does not name current_password: %s", i, r.Body)
		}
	}
	// The account's budget is spent: even the right password waits.
	r = shop.API.Do("PUT", "/api/v1/users/me/password",
		map[string]string{"current_password": password, "new_password": "a brand new secret"}, testkit.Bearer(token))
	status(t, r, http.StatusTooManyRequests, "a sixth attempt")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	status(t, shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)), http.StatusOK, "the session still works")
}

func TestUpdateMe_EmailNeedsThePasswordIsValidatedAndUnique(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	id, token := shop.Customer(t)
	other, _ := shop.Customer(t)
	_, admin := shop.Admin(t)
	var taken accountJSON
	shop.API.Do("GET", "/api/v1/users/"+other, nil, testkit.Bearer(admin)).Decode(t, &taken)

	patch := func(body map[string]string) *testkit.Response {
		return shop.API.Do("PATCH", "/api/v1/users/me", body, testkit.Bearer(token))
	}
	r := patch(map[string]string{"email": "new@example.com"})
	status(t, r, http.StatusUnprocessableEntity, "e-mail without the password")
	if field(t, r, "current_password") == "" {
		t.Errorf("the problem does not name current_password: %s", r.Body)
	}
	r = patch(map[string]string{"email": "not an address", "current_password": password})
	status(t, r, http.StatusUnprocessableEntity, "an invalid e-mail")
	if field(t, r, "email") == "" {
		t.Errorf("the problem does not name email: %s", r.Body)
	}
	status(t, patch(map[string]string{"email": "new@example.com", "current_password": "wrong password"}),
		http.StatusUnprocessableEntity, "a wrong password")
	r = patch(map[string]string{"email": strings.ToUpper(taken.Email), "current_password": password})
	status(t, r, http.StatusConflict, "another account's e-mail")

	var me accountJSON
	shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)).Decode(t, &me)
	if me.Email == taken.Email || me.Email == "new@example.com" {
		t.Fatalf("refused changes changed the e-mail to %s", me.Email)
	}
	newEmail := unique("moved") + "@Example.com"
	r = patch(map[string]string{"email": newEmail, "current_password": password})
	status(t, r, http.StatusOK, "change e-mail")
	r.Decode(t, &me)
	if me.Email != strings.ToLower(newEmail) {
		t.Fatalf("e-mail = %s, want %s", me.Email, strings.ToLower(newEmail))
	}
	shop.Login(t, newEmail, password)
	if evs := updates(t, shop, id); len(evs) != 0 {
		t.Fatalf("an e-mail change published %d user.updated events, want none (they carry no e-mail)", len(evs))
	}
}

func TestDisplayName_RegisteredChangedAndAnnouncedOncePerChange(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	name := unique("dn")
	r := shop.API.Do("POST", "/api/v1/users", map[string]string{"username": name, "display_name": "  Ada Lovelace ",
		"email": name + "@example.com", "password": password})
	status(t, r, http.StatusCreated, "register with a display name")
	var u accountJSON
	r.Decode(t, &u)
	if u.DisplayName != "Ada Lovelace" {
		t.Fatalf("display name = %q, want it trimmed", u.DisplayName)
	}
	var registered string
	if err := testkit.OpenSQL(t, shop.DatabaseURL).QueryRow(
		`SELECT payload->>'display_name' FROM bus."m_user.registered.v1" WHERE payload->>'user_id' = $1`, u.ID).Scan(&registered); err != nil {
		t.Fatal(err)
	}
	if registered != "Ada Lovelace" {
		t.Errorf("user.registered display_name = %q", registered)
	}

	token := shop.Login(t, name, password)
	r = shop.API.Do("PATCH", "/api/v1/users/me", map[string]string{"display_name": "bad\nname"}, testkit.Bearer(token))
	status(t, r, http.StatusUnprocessableEntity, "a display name on two lines")
	for range 2 { // the same name twice: one change
		r = shop.API.Do("PATCH", "/api/v1/users/me", map[string]string{"display_name": "Countess of Lovelace"}, testkit.Bearer(token))
		status(t, r, http.StatusOK, "change display name")
	}
	r.Decode(t, &u)
	if u.DisplayName != "Countess of Lovelace" {
		t.Fatalf("display name = %q", u.DisplayName)
	}
	evs := updates(t, shop, u.ID)
	if len(evs) != 1 {
		t.Fatalf("%d user.updated events, want 1: %+v", len(evs), evs)
	}
	if ev := evs[0]; ev.Username != name || ev.DisplayName != "Countess of Lovelace" || ev.Suspended ||
		strings.Join(ev.Roles, ",") != "customer" || ev.UpdatedAt.IsZero() {
		t.Fatalf("user.updated = %+v", ev)
	}
}

func TestSetRoles_AnnouncesEachChangeOnce(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, admin := shop.Admin(t)
	id, _ := shop.Customer(t)
	for _, roles := range [][]string{{}, {}, {"customer", "admin"}} {
		status(t, shop.API.Do("PUT", "/api/v1/users/"+id+"/roles", map[string]any{"roles": roles}, testkit.Bearer(admin)),
			http.StatusOK, "set roles")
	}
	evs := updates(t, shop, id)
	if len(evs) != 2 {
		t.Fatalf("%d user.updated events for two changes, want 2: %+v", len(evs), evs)
	}
	if len(evs[0].Roles) != 0 || strings.Join(evs[1].Roles, ",") != "admin,customer" || !evs[1].UpdatedAt.After(evs[0].UpdatedAt) {
		t.Fatalf("user.updated events = %+v", evs)
	}
}

// TestSuspension_EndsSessionsAtOnceRefusesLogInAndReinstates checks the
// session both as this process does and as a process of a split topology
// does (asking the user module remotely): neither keeps a suspended
// session alive.
func TestSuspension_EndsSessionsAtOnceRefusesLogInAndReinstates(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	adminID, admin := shop.Admin(t)
	name := unique("susp")
	created, err := shop.module.CreateUser(context.Background(), name, name+"@example.com", password, false)
	if err != nil {
		t.Fatal(err)
	}
	id, token := created.ID, shop.Login(t, name, password)
	remote := user.RemoteAuthenticator(shop.URL, nil)
	if _, err := remote.Authenticate(context.Background(), token); err != nil {
		t.Fatalf("remote check before suspension: %v", err)
	}

	status(t, shop.API.Do("POST", "/api/v1/users/"+id+"/suspension", nil, testkit.Bearer(token)), http.StatusForbidden, "a customer suspends")
	status(t, shop.API.Do("POST", "/api/v1/users/"+adminID+"/suspension", nil, testkit.Bearer(admin)), http.StatusConflict, "an admin suspends themself")
	var u accountJSON
	for range 2 { // suspending a suspended account changes nothing
		r := shop.API.Do("POST", "/api/v1/users/"+id+"/suspension", nil, testkit.Bearer(admin))
		status(t, r, http.StatusOK, "suspend")
		r.Decode(t, &u)
	}
	if u.SuspendedAt == nil || u.SuspendedBy == nil || *u.SuspendedBy != adminID {
		t.Fatalf("suspended account = %+v", u)
	}
	status(t, shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)), http.StatusUnauthorized, "the suspended session")
	if _, err := remote.Authenticate(context.Background(), token); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("remote check after suspension: %v, want an invalid token", err)
	}
	r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": password})
	status(t, r, http.StatusForbidden, "a suspended log-in")
	if !strings.Contains(string(r.Body), "account suspended") {
		t.Errorf("the problem does not say the account is suspended: %s", r.Body)
	}
	status(t, shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": name, "password": "a wrong password"}),
		http.StatusUnauthorized, "a suspended account with a wrong password") // tells a guesser nothing

	r = shop.API.Do("DELETE", "/api/v1/users/"+id+"/suspension", nil, testkit.Bearer(admin))
	status(t, r, http.StatusOK, "reinstate")
	r.Decode(t, &u)
	if u.SuspendedAt != nil || u.SuspendedBy != nil {
		t.Fatalf("reinstated account = %+v", u)
	}
	// The old session stays ended; a new log-in works.
	status(t, shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(token)), http.StatusUnauthorized, "the old session")
	again := shop.Login(t, name, password)
	if _, err := remote.Authenticate(context.Background(), again); err != nil {
		t.Fatalf("remote check after reinstating: %v", err)
	}

	evs := updates(t, shop, id)
	if len(evs) != 2 || !evs[0].Suspended || evs[1].Suspended || evs[0].Username != name {
		t.Fatalf("user.updated events = %+v, want one suspended, one reinstated", evs)
	}
}

func TestListUsers_SearchesUsernameEmailAndDisplayNameAndPages(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, admin := shop.Admin(t)
	_, customer := shop.Customer(t)
	tag := unique("zq")
	for i, u := range []map[string]string{
		{"username": tag + "_a", "email": "a_" + unique("x") + "@example.com"},
		{"username": unique("b"), "email": tag + "@example.com"},
		{"username": unique("c"), "display_name": "Mx " + strings.ToUpper(tag), "email": unique("c") + "@example.com"},
		{"username": unique("d"), "email": unique("d") + "@example.com"},
	} {
		u["password"] = password
		status(t, shop.API.Do("POST", "/api/v1/users", u), http.StatusCreated, "register "+string(rune('a'+i)))
	}
	list := func(q, cursor string, limit string) (page struct {
		Items      []accountJSON `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}) {
		v := url.Values{"q": {q}, "limit": {limit}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		r := shop.API.Do("GET", "/api/v1/users?"+v.Encode(), nil, testkit.Bearer(admin))
		status(t, r, http.StatusOK, "search "+q)
		r.Decode(t, &page)
		return page
	}
	first := list(tag, "", "2")
	if len(first.Items) != 2 || first.NextCursor == nil {
		t.Fatalf("first page = %+v", first)
	}
	second := list(tag, *first.NextCursor, "2")
	if len(second.Items) != 1 || second.NextCursor != nil {
		t.Fatalf("second page = %+v", second)
	}
	if got := list("%", "", "100"); len(got.Items) != 0 {
		t.Errorf("q=%% matched %d accounts, want none (it is not a wildcard)", len(got.Items))
	}
	status(t, shop.API.Do("GET", "/api/v1/users?q="+strings.Repeat("x", 101), nil, testkit.Bearer(admin)),
		http.StatusUnprocessableEntity, "a too long search")
	status(t, shop.API.Do("GET", "/api/v1/users?q="+tag, nil, testkit.Bearer(customer)), http.StatusForbidden, "a customer searches")
}
