package user_test

import (
	"testing"

	"github.com/modshop/modshop/platform/testkit"
)

func TestLogin_ClearsLongDeadSessionsOfEveryone(t *testing.T) {
	t.Parallel()
	shop := startUser(t)
	register(t, shop.API, "rita", "rita@example.com", "rita's password")
	register(t, shop.API, "sam", "sam@example.com", "sam's password")
	shop.Login(t, "rita", "rita's password")
	shop.Login(t, "rita", "rita's password")
	// Rita's sessions ended long ago, and she never comes back.
	db := testkit.OpenSQL(t, shop.DatabaseURL)
	if _, err := db.Exec(`UPDATE users.sessions SET expires_at = now() - interval '8 days'`); err != nil {
		t.Fatal(err)
	}
	shop.Login(t, "sam", "sam's password")
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM users.sessions WHERE expires_at < now()`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d sessions dead for 8 days are kept: the table grows with every log-in of users who never return", left)
	}
}
