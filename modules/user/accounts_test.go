package user_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/modshop/modshop/platform/testkit"
)

type userJSON struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Email    string   `json:"email"`
	Roles    []string `json:"roles"`
}

func register(t *testing.T, api *testkit.API, username, email, password string) *testkit.Response {
	t.Helper()
	return api.Do("POST", "/api/v1/users", map[string]string{"username": username, "email": email, "password": password})
}

func TestAccount_RegisterLoginMeLogout(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	api := shop.API

	resp := register(t, api, "Alice_1", "Alice@Example.com", "a long enough secret")
	if resp.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", resp.Status, resp.Body)
	}
	var created userJSON
	resp.Decode(t, &created)
	if created.Username != "Alice_1" || created.Email != "alice@example.com" || len(created.Roles) != 1 || created.Roles[0] != "customer" {
		t.Fatalf("registered user = %+v, want Alice_1, alice@example.com, [customer]", created)
	}
	if resp.Header.Get("Location") != "/api/v1/users/"+created.ID {
		t.Errorf("Location = %q", resp.Header.Get("Location"))
	}

	// Log in by e-mail in another case: e-mail is case-insensitive.
	resp = api.Do("POST", "/api/v1/sessions", map[string]string{"login": "ALICE@example.com", "password": "a long enough secret"})
	if resp.Status != http.StatusCreated {
		t.Fatalf("log in: %d %s", resp.Status, resp.Body)
	}
	var sess struct {
		Token     string   `json:"token"`
		ExpiresAt string   `json:"expires_at"`
		User      userJSON `json:"user"`
	}
	resp.Decode(t, &sess)
	if sess.Token == "" || sess.User.ID != created.ID {
		t.Fatalf("session = %+v", sess)
	}
	cookie := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"modshop_session=" + sess.Token, "HttpOnly", "SameSite=Lax", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("Set-Cookie %q lacks %q", cookie, want)
		}
	}

	resp = api.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(sess.Token))
	if resp.Status != http.StatusOK {
		t.Fatalf("me: %d %s", resp.Status, resp.Body)
	}
	var me userJSON
	resp.Decode(t, &me)
	if me.ID != created.ID || me.Username != "Alice_1" {
		t.Fatalf("me = %+v, want %+v", me, created)
	}

	// The cookie alone authenticates too.
	resp = api.Do("GET", "/api/v1/users/me", nil, testkit.Header("Cookie", "modshop_session="+sess.Token))
	if resp.Status != http.StatusOK {
		t.Fatalf("me by cookie: %d %s", resp.Status, resp.Body)
	}

	resp = api.Do("DELETE", "/api/v1/sessions/current", nil, testkit.Bearer(sess.Token))
	if resp.Status != http.StatusNoContent {
		t.Fatalf("log out: %d %s", resp.Status, resp.Body)
	}
	resp = api.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(sess.Token))
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("me after log out: %d %s, want 401", resp.Status, resp.Body)
	}
	resp.Problem(t)
	resp = api.Do("GET", "/api/v1/users/me", nil, testkit.Header("Cookie", "modshop_session="+sess.Token))
	if resp.Status != http.StatusUnauthorized {
		t.Fatalf("me by cookie after log out: %d, want 401", resp.Status)
	}
}

func TestRegister_TakenUsernameOrEmailIs409(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	if r := register(t, shop.API, "bob", "bob@example.com", "bob's password"); r.Status != http.StatusCreated {
		t.Fatalf("first register: %d %s", r.Status, r.Body)
	}
	cases := []struct{ name, username, email, field string }{
		{"same username", "bob", "other@example.com", "username"},
		{"username in another case", "BOB", "other2@example.com", "username"},
		{"same email", "bobby", "bob@example.com", "email"},
		{"email in another case", "bobby2", "BOB@EXAMPLE.COM", "email"},
	}
	for _, tc := range cases {
		r := register(t, shop.API, tc.username, tc.email, "another password")
		if r.Status != http.StatusConflict {
			t.Errorf("%s: %d %s, want 409", tc.name, r.Status, r.Body)
			continue
		}
		p := r.Problem(t)
		errs, _ := p["errors"].([]any)
		if len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field {
			t.Errorf("%s: problem %v should name field %s", tc.name, p, tc.field)
		}
	}
	if n := countUsers(t, shop.DatabaseURL); n != 1 {
		t.Fatalf("users = %d, want 1", n)
	}
}

func TestLogin_WrongPasswordAndUnknownUserLookTheSame(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	register(t, shop.API, "carol", "carol@example.com", "carol's password")

	wrong := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "carol", "password": "not her password"})
	unknown := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "nobody-here", "password": "not her password"})
	if wrong.Status != http.StatusUnauthorized || unknown.Status != http.StatusUnauthorized {
		t.Fatalf("statuses %d and %d, want 401 both", wrong.Status, unknown.Status)
	}
	pw, pu := wrong.Problem(t), unknown.Problem(t)
	for _, id := range []string{"request_id", "trace_id"} { // each request's own
		delete(pw, id)
		delete(pu, id)
	}
	if !equalJSON(pw, pu) {
		t.Fatalf("bodies differ:\nwrong password: %v\nunknown user:   %v", pw, pu)
	}
}

func TestLogin_ThrottledPerAccountWithRetryAfter(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	register(t, shop.API, "dave", "dave@example.com", "dave's password")
	for i := range 5 {
		r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "dave", "password": "guess " + string(rune('a'+i))})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, r.Status)
		}
	}
	// Even the right password waits now: the account is being guessed at.
	r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "dave", "password": "dave's password"})
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("6th attempt: %d %s, want 429", r.Status, r.Body)
	}
	r.Problem(t)
	if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("Retry-After = %q, want a positive number of seconds", ra)
	}
	// Another account from the same client is not locked by dave's.
	register(t, shop.API, "erin", "erin@example.com", "erin's password")
	if tok := shop.Login(t, "erin", "erin's password"); tok == "" {
		t.Fatal("erin could not log in")
	}
}

func TestLogin_ConcurrentGuessesCannotOutrunTheThrottle(t *testing.T) {
	t.Parallel()
	// The five checked guesses may queue for a hashing slot on a busy
	// machine: let them wait rather than be refused (503).
	shop := startUser(t, func(c *settings) { c.PasswordHashes.Wait = time.Minute })
	register(t, shop.API, "judy", "judy@example.com", "judy's password")
	const guesses = 20
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half by username, half by e-mail: one account, one bucket.
			login := "judy"
			if i%2 == 1 {
				login = "judy@example.com"
			}
			statuses <- shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": login, "password": fmt.Sprintf("guess %d", i)}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusUnauthorized] != 5 || counts[http.StatusTooManyRequests] != guesses-5 {
		t.Fatalf("statuses %v: want exactly 5 checked guesses (401) and the rest throttled (429)", counts)
	}
}

func TestUsers_GetOneIsForStaffAndTheOwner(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, admin := shop.Admin(t)
	aliceID, alice := shop.Customer(t)
	bobID, _ := shop.Customer(t)
	if r := shop.API.Do("GET", "/api/v1/users/"+aliceID, nil, testkit.Bearer(alice)); r.Status != http.StatusOK {
		t.Errorf("owner: %d", r.Status)
	}
	if r := shop.API.Do("GET", "/api/v1/users/"+bobID, nil, testkit.Bearer(admin)); r.Status != http.StatusOK {
		t.Errorf("admin: %d", r.Status)
	}
	for _, id := range []string{bobID, strings.ToUpper(bobID), "urn:uuid:" + bobID, "nope"} {
		if r := shop.API.Do("GET", "/api/v1/users/"+id, nil, testkit.Bearer(alice)); r.Status != http.StatusNotFound {
			t.Errorf("someone else's account %q: %d, want 404", id, r.Status)
		}
	}
}

func TestLogin_ThrottledPerClientAddress(t *testing.T) {
	t.Parallel()
	shop := startUser(t, func(c *settings) { c.Throttle.PerClientBurst = 3 })
	for i := range 3 {
		r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "ghost" + string(rune('a'+i)), "password": "whatever123"})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, r.Status)
		}
	}
	r := shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "ghostz", "password": "whatever123"})
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt from one address: %d (Retry-After %q), want 429", r.Status, r.Header.Get("Retry-After"))
	}
}

func TestRegister_BadInputChangesNothing(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	valid := `{"username":"frank","email":"frank@example.com","password":"frank's password"}`
	cases := []struct {
		name   string
		body   []byte
		status int
		field  string
	}{
		{"malformed JSON", []byte(`{"username":"frank",`), 400, ""},
		{"not an object", []byte(`["frank"]`), 400, ""},
		{"two objects", []byte(valid + valid), 400, ""},
		{"unknown field roles", []byte(`{"username":"frank","email":"frank@example.com","password":"frank's password","roles":["admin"]}`), 400, ""},
		{"unknown field id", []byte(`{"id":"x","username":"frank","email":"frank@example.com","password":"frank's password"}`), 400, ""},
		{"wrong type", []byte(`{"username":42,"email":"frank@example.com","password":"frank's password"}`), 400, ""},
		{"missing username", []byte(`{"email":"frank@example.com","password":"frank's password"}`), 422, "username"},
		{"missing email", []byte(`{"username":"frank","password":"frank's password"}`), 422, "email"},
		{"missing password", []byte(`{"username":"frank","email":"frank@example.com"}`), 422, "password"},
		{"empty body", nil, 400, ""},
		{"overlong username", []byte(`{"username":"` + strings.Repeat("f", 51) + `","email":"frank@example.com","password":"frank's password"}`), 422, "username"},
		{"overlong email", []byte(`{"username":"frank","email":"` + strings.Repeat("f", 95) + `@example.com","password":"frank's password"}`), 422, "email"},
		{"overlong password", []byte(`{"username":"frank","email":"frank@example.com","password":"` + strings.Repeat("p", 129) + `"}`), 422, "password"},
		{"short password", []byte(`{"username":"frank","email":"frank@example.com","password":"short"}`), 422, "password"},
		{"password is the username", []byte(`{"username":"frankfrank","email":"frank@example.com","password":"FrankFrank"}`), 422, "password"},
		{"bad email", []byte(`{"username":"frank","email":"frank at example","password":"frank's password"}`), 422, "email"},
		{"bad username characters", []byte(`{"username":"fr<script>","email":"frank@example.com","password":"frank's password"}`), 422, "username"},
		{"invalid UTF-8", append(append([]byte(`{"username":"fr`), 0xff, 0xfe), []byte(`ank","email":"frank@example.com","password":"frank's password"}`)...), 400, ""},
		{"2 MB body", []byte(`{"username":"frank","email":"frank@example.com","password":"` + strings.Repeat("p", 2<<20) + `"}`), 413, ""},
	}
	for _, tc := range cases {
		r := shop.API.Do("POST", "/api/v1/users", testkit.Raw(tc.body))
		if r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
			continue
		}
		p := r.Problem(t)
		if p["detail"] == "" && p["errors"] == nil {
			t.Errorf("%s: problem says nothing: %v", tc.name, p)
		}
		if tc.field != "" && !strings.Contains(string(r.Body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: problem should name field %q: %s", tc.name, tc.field, r.Body)
		}
	}
	r := shop.API.Do("POST", "/api/v1/users", testkit.Raw(valid), testkit.Header("Content-Type", "text/plain"))
	if r.Status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d, want 415", r.Status)
	}
	if n := countUsers(t, shop.DatabaseURL); n != 0 {
		t.Fatalf("bad input created %d users", n)
	}
}

func TestAuth_NoTokenIs401AndCustomerOnAdminRouteIs403(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	custID, cust := shop.Customer(t)

	for _, r := range []*testkit.Response{
		shop.API.Do("GET", "/api/v1/users/me", nil),
		shop.API.Do("GET", "/api/v1/users", nil),
		shop.API.Do("DELETE", "/api/v1/sessions/current", nil),
		shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer("forged-token-of-the-right-length-0123456789")),
		shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Header("Authorization", "Basic YWxpY2U6c2VjcmV0")),
	} {
		if r.Status != http.StatusUnauthorized {
			t.Errorf("without a valid token: %d %s, want 401", r.Status, r.Body)
		}
	}
	for _, r := range []*testkit.Response{
		shop.API.Do("GET", "/api/v1/users", nil, testkit.Bearer(cust)),
		shop.API.Do("PUT", "/api/v1/users/"+custID+"/roles", map[string]any{"roles": []string{"admin"}}, testkit.Bearer(cust)),
	} {
		if r.Status != http.StatusForbidden {
			t.Errorf("customer on admin route: %d %s, want 403", r.Status, r.Body)
		}
	}
	var me userJSON
	shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(cust)).Decode(t, &me)
	if len(me.Roles) != 1 || me.Roles[0] != "customer" {
		t.Fatalf("customer promoted themselves: roles %v", me.Roles)
	}
}

func TestAdmin_ListsUsersAndSetsRoles(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	adminID, admin := shop.Admin(t)
	var ids []string
	for range 5 {
		id, _ := shop.Customer(t)
		ids = append(ids, id)
	}

	// Walk every page of two.
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		path := "/api/v1/users?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := shop.API.Do("GET", path, nil, testkit.Bearer(admin))
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		var page struct {
			Items      []userJSON `json:"items"`
			NextCursor *string    `json:"next_cursor"`
		}
		r.Decode(t, &page)
		for _, u := range page.Items {
			if seen[u.ID] {
				t.Fatalf("user %s listed twice", u.ID)
			}
			seen[u.ID] = true
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(seen) != 6 {
		t.Fatalf("listed %d users, want 6", len(seen))
	}

	for _, bad := range []string{"?limit=0", "?limit=101", "?limit=ten", "?cursor=not-a-cursor"} {
		r := shop.API.Do("GET", "/api/v1/users"+bad, nil, testkit.Bearer(admin))
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("list%s: %d, want 4xx", bad, r.Status)
		}
	}

	r := shop.API.Do("PUT", "/api/v1/users/"+ids[0]+"/roles", map[string]any{"roles": []string{"customer", "admin"}}, testkit.Bearer(admin))
	if r.Status != http.StatusOK {
		t.Fatalf("set roles: %d %s", r.Status, r.Body)
	}
	var promoted userJSON
	r.Decode(t, &promoted)
	if strings.Join(promoted.Roles, ",") != "admin,customer" {
		t.Fatalf("roles = %v, want [admin customer]", promoted.Roles)
	}

	if r := shop.API.Do("PUT", "/api/v1/users/"+ids[1]+"/roles", map[string]any{"roles": []string{"root"}}, testkit.Bearer(admin)); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("unknown role: %d %s, want 422", r.Status, r.Body)
	}
	if r := shop.API.Do("PUT", "/api/v1/users/"+adminID+"/roles", map[string]any{"roles": []string{"customer"}}, testkit.Bearer(admin)); r.Status != http.StatusConflict {
		t.Errorf("admin demoting themselves: %d %s, want 409", r.Status, r.Body)
	}
	if r := shop.API.Do("PUT", "/api/v1/users/00000000-0000-0000-0000-000000000000/roles", map[string]any{"roles": []string{"customer"}}, testkit.Bearer(admin)); r.Status != http.StatusNotFound {
		t.Errorf("unknown user: %d, want 404", r.Status)
	}
	if r := shop.API.Do("PUT", "/api/v1/users/not-a-uuid/roles", map[string]any{"roles": []string{"customer"}}, testkit.Bearer(admin)); r.Status != http.StatusNotFound {
		t.Errorf("malformed user id: %d, want 404", r.Status)
	}
}

func TestSecrets_HashesAreArgon2idAndNeverLeave(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, admin := shop.Admin(t)
	register(t, shop.API, "heidi", "heidi@example.com", "heidi's password")
	tok := shop.Login(t, "heidi", "heidi's password")

	db := testkit.OpenSQL(t, shop.DatabaseURL)
	rows, err := db.Query(`SELECT password_hash FROM users.users`)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$m=") {
			t.Errorf("stored hash %q is not argon2id", h)
		}
		hashes = append(hashes, h)
	}
	var tokenHashes [][]byte
	trows, err := db.Query(`SELECT token_hash FROM users.sessions`)
	if err != nil {
		t.Fatal(err)
	}
	for trows.Next() {
		var h []byte
		if err := trows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		tokenHashes = append(tokenHashes, h)
	}
	var stored string
	if err := db.QueryRow(`SELECT count(*) FROM users.sessions WHERE token_hash = $1::bytea`, []byte(tok)).Scan(&stored); err != nil || stored != "0" {
		t.Errorf("a session token is stored in the clear (count %s, err %v)", stored, err)
	}

	bodies := [][]byte{
		shop.API.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(tok)).Body,
		shop.API.Do("GET", "/api/v1/users?limit=100", nil, testkit.Bearer(admin)).Body,
		shop.API.Do("POST", "/api/v1/sessions", map[string]string{"login": "heidi", "password": "heidi's password"}).Body,
		shop.API.Do("POST", "/api/v1/users", map[string]string{"username": "heidi", "email": "h2@example.com", "password": "whatever12"}).Body,
	}
	for _, b := range bodies {
		if bytes.Contains(b, []byte("argon2")) || bytes.Contains(b, []byte("password_hash")) || bytes.Contains(b, []byte("token_hash")) {
			t.Errorf("response leaks a hash: %s", b)
		}
		for _, h := range hashes {
			if bytes.Contains(b, []byte(h[len(h)-20:])) {
				t.Errorf("response contains a password hash: %s", b)
			}
		}
		for _, h := range tokenHashes {
			if bytes.Contains(b, []byte(hexOf(h))) {
				t.Errorf("response contains a token hash: %s", b)
			}
		}
	}
}

func TestCookieSession_CrossSiteRequestIsRefused(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	_, tok := shop.Customer(t)
	cookie := testkit.Header("Cookie", "modshop_session="+tok)

	// A browser on another site submits a log-out with the victim's cookie.
	r := shop.API.Do("DELETE", "/api/v1/sessions/current", nil, cookie,
		testkit.Header("Sec-Fetch-Site", "cross-site"), testkit.Header("Origin", "https://evil.example"))
	if r.Status != http.StatusForbidden {
		t.Fatalf("cross-site log-out: %d %s, want 403", r.Status, r.Body)
	}
	// The session still works: the forged request changed nothing.
	if r := shop.API.Do("GET", "/api/v1/users/me", nil, cookie); r.Status != http.StatusOK {
		t.Fatalf("session after refused cross-site request: %d", r.Status)
	}
	// The same request from our own pages goes through.
	r = shop.API.Do("DELETE", "/api/v1/sessions/current", nil, cookie, testkit.Header("Sec-Fetch-Site", "same-origin"))
	if r.Status != http.StatusNoContent {
		t.Fatalf("same-origin log-out: %d %s", r.Status, r.Body)
	}
}

func countUsers(t *testing.T, url string) int {
	t.Helper()
	var n int
	if err := testkit.OpenSQL(t, url).QueryRowContext(context.Background(), `SELECT count(*) FROM users.users`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
