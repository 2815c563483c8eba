package webtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// logIn logs a tab in through the log-in form.
func logIn(s *tab, login, pw, username string) {
	s.t.Helper()
	s.open("/login")
	s.typeInto("#login-login", login)
	s.typeInto("#login-password", pw+"\n")
	s.waitFor(username+" to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(username)))
}

// TestAccountsInTheBrowser: a customer changes their password on the
// account page (their other session ends; the new password logs in), and
// staff find them on the users page, change their roles, suspend them (the
// customer's open page is logged out; log-in and ordering are refused) and
// reinstate them.
func TestAccountsInTheBrowser(t *testing.T) {
	b := startBrowser(t)
	shop := apptest.Start(t, func(c *app.Config) { c.LoginPerClient = 1000 })
	_, admin := shop.Admin(t)
	api := shop.Client(t)
	var product struct{ ID string }
	if r := api.Do("POST", "/api/v1/products", map[string]any{"sku": "AC-1", "name": "Account lamp", "price": "5.00", "stock": 10},
		testkit.Bearer(admin)); r.Status != http.StatusCreated {
		t.Fatalf("create product: %d %s", r.Status, r.Body)
	} else {
		r.Decode(t, &product)
	}
	place := func(token string) int {
		return api.Do("POST", "/api/v1/orders", map[string]any{"payment_method": "pm_card_visa",
			"items": []map[string]any{{"product_id": product.ID, "quantity": 1}}}, testkit.Bearer(token)).Status
	}

	name, staffName := apptest.Unique("acct"), apptest.Unique("staff")
	if r := api.Do("POST", "/api/v1/users", map[string]string{"username": name, "display_name": "Ann Account",
		"email": name + "@example.com", "password": password}); r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	if _, err := shop.CreateUser(t.Context(), staffName, staffName+"@example.com", password, true); err != nil {
		t.Fatal(err)
	}
	customer := b.newTab(t, "the customer", shop.URL)
	staff := b.newTab(t, "staff", shop.URL)
	const newPassword = "a fresh long secret"

	t.Run("the customer changes their password on the account page", func(t *testing.T) {
		s := customer.as(t)
		other := shop.Login(t, name, password) // another device
		logIn(s, name, password, name)
		s.click(`#site-nav a[href="/account"]`)
		s.visible("#account-summary")
		for css, want := range map[string]string{"#account-username": name, "#account-display-name": "Ann Account",
			"#account-email": name + "@example.com", "#account-roles": "Customer"} {
			if got := s.text(css); got != want {
				t.Errorf("%s = %q, want %q", css, got, want)
			}
		}
		s.shot("account")

		s.typeInto("#account-current-password", "not my password")
		s.typeInto("#account-new-password", newPassword)
		s.expectFailure("/api/v1/users/me/password", http.StatusUnprocessableEntity)
		s.click("#account-password-submit")
		s.visible("#account-current-password-error")
		s.typeInto("#account-current-password", password)
		s.typeInto("#account-new-password", newPassword)
		s.click("#account-password-submit")
		s.waitFor("the change to be confirmed", `document.getElementById("account-password-done").textContent.includes("Password changed")`)
		if r := api.Do("GET", "/api/v1/users/me", nil, testkit.Bearer(other)); r.Status != http.StatusUnauthorized {
			t.Errorf("the other session after a password change: %d, want 401", r.Status)
		}

		// This session goes on; logging out and in again takes the new password.
		s.open("/account")
		s.visible("#account-summary")
		s.click("#logout")
		s.visible(`#site-nav a[href="/login"]`)
		logIn(s, name, newPassword, name)
	})

	t.Run("staff search users, change roles, suspend and reinstate", func(t *testing.T) {
		s := staff.as(t)
		c := customer.as(t)
		logIn(s, staffName, password, staffName)
		s.click(`#site-nav a[href="/staff"]`)
		s.click(`.staff-nav a[href="/staff/users"]`)
		s.visible("#staff-users")
		s.typeInto("#user-search-q", "ann account\n") // the display name, in another case
		s.waitFor("the search", `location.search.includes("q=")`)
		s.visible("#staff-users")
		cards := s.texts("#staff-users .user-card .card-title")
		if len(cards) != 1 || cards[0] != "Ann Account ("+name+")" {
			t.Fatalf("search found %q, want Ann Account only", cards)
		}
		card := fmt.Sprintf(`.user-card[data-username=%s]`, q(name))
		s.shot("staff-users")

		// Roles: take customer away, and ordering is refused; give it back.
		s.click(card + ` input[value="customer"]`)
		s.click(card + ` .user-roles button[type="submit"]`)
		s.waitFor("the roles to be saved", fmt.Sprintf(`!document.querySelector(%s).checked`, q(card+` input[value="customer"]`)))
		token := shop.Login(t, name, newPassword)
		s.waitFor("the roles to be saved", `document.getElementById("toast").textContent.includes("none")`)
		if st := place(token); st != http.StatusForbidden {
			t.Errorf("placing an order without the customer role: %d, want 403", st)
		}
		s.click(card + ` input[value="customer"]`)
		s.click(card + ` .user-roles button[type="submit"]`)
		s.waitFor("the roles to be saved", `document.getElementById("toast").textContent.includes("Customer")`)

		// Suspend: the customer's open page finds its session over.
		c.open("/account")
		c.visible("#account-summary")
		s.click(card + ` .user-standing button`)
		s.waitFor("the suspension", fmt.Sprintf(`document.querySelector(%s)?.dataset.standing === "suspended"`, q(card)))
		c.expectFailure("/api/v1/users/me", http.StatusUnauthorized)
		c.click(`#site-nav a[href="/orders"]`)
		c.expectFailure("/api/v1/orders", http.StatusUnauthorized)
		c.visible(`#site-nav a[href="/login"]`)
		if st := place(token); st != http.StatusUnauthorized {
			t.Errorf("placing an order with a suspended account's session: %d, want 401", st)
		}
		c.open("/login")
		c.typeInto("#login-login", name)
		c.typeInto("#login-password", newPassword)
		c.expectFailure("/api/v1/sessions", http.StatusForbidden)
		c.click("#login-submit")
		c.visible("#login-error")
		if got := c.text("#login-error"); !strings.Contains(got, "Account suspended") {
			t.Errorf("a suspended log-in is answered %q", got)
		}

		s.click(card + ` .user-standing button`)
		s.waitFor("the reinstatement", fmt.Sprintf(`document.querySelector(%s)?.dataset.standing === "active"`, q(card)))
		c.click("#login-submit")
		c.waitFor("the reinstated customer to be logged in", fmt.Sprintf(`document.getElementById("signed-in-as")?.textContent === %s`, q(name)))
		if st := place(shop.Login(t, name, newPassword)); st != http.StatusAccepted {
			t.Errorf("placing an order after reinstatement: %d, want 202", st)
		}
	})
}
