package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/modshop/modshop/app"
	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/platform/testkit"
)

// schemas lists the module schemas that exist in the database at dbURL.
func schemas(t *testing.T, dbURL string) map[string]bool {
	t.Helper()
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT nspname FROM pg_namespace WHERE nspname IN ('users', 'products', 'orders', 'payments', 'bus')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[s] = true
	}
	return out
}

func TestServe_OnlyTheChosenModulesRun(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) { c.Modules = "user,product" })
	got := schemas(t, shop.DatabaseURL)
	if !got["users"] || !got["products"] || !got["bus"] || got["orders"] || got["payments"] {
		t.Fatalf("schemas after starting user and product: %v; want users, products and bus only", got)
	}
	doc := shop.API.Do("GET", "/api/openapi.json", nil)
	for path, want := range map[string]bool{`"/api/v1/users"`: true, `"/api/v1/products"`: true, `"/api/v1/orders"`: false, `"/api/v1/payments"`: false, `"/api/v1/admin/bus"`: true} {
		if bytes.Contains(doc.Body, []byte(path)) != want {
			t.Errorf("openapi.json lists %s: %v, want %v", path, !want, want)
		}
	}
	_, token := shop.Customer(t)
	r := shop.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(token))
	if r.Status != http.StatusNotFound {
		t.Fatalf("orders in a process without the order module: %d, want 404", r.Status)
	}
	r.Problem(t)
	stats, err := shop.BusOverview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	handlers := 0
	for _, topic := range stats {
		for _, c := range topic.Consumers {
			handlers++
			if !strings.HasPrefix(c.Handler, "product.") && !strings.HasPrefix(c.Handler, "user.") {
				t.Errorf("handler %s subscribed in a process without its module", c.Handler)
			}
		}
	}
	if handlers == 0 {
		t.Error("the product module's handlers did not subscribe")
	}
	if r := shop.API.Do("GET", "/readyz", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
}

// TestServe_ProcessWithoutUserModuleChecksSessionsThere: a process running
// product, order and payment takes the session tokens the user module's
// process issued, with their roles, and stops taking one the moment its
// owner logs out there.
func TestServe_ProcessWithoutUserModuleChecksSessionsThere(t *testing.T) {
	t.Parallel()
	users := apptest.Start(t, func(c *app.Config) { c.Modules = "user" })
	rest := apptest.Start(t, func(c *app.Config) {
		c.Modules = "product,order,payment"
		c.DatabaseURL = users.DatabaseURL
		c.UserURL = users.URL
	})
	_, admin := users.Admin(t)
	_, customer := users.Customer(t)
	product := map[string]any{"sku": "REMOTE-1", "name": "Remote lamp", "price": "9.90", "stock": 3}
	if r := rest.API.Do("POST", "/api/v1/products", product, testkit.Bearer(admin)); r.Status != http.StatusCreated {
		t.Fatalf("admin creates a product in the other process: %d %s", r.Status, r.Body)
	}
	if r := rest.API.Do("POST", "/api/v1/products", product, testkit.Bearer(customer)); r.Status != http.StatusForbidden {
		t.Fatalf("customer creates a product: %d, want 403", r.Status)
	}
	if r := rest.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(customer)); r.Status != http.StatusOK {
		t.Fatalf("customer lists orders in the other process: %d %s", r.Status, r.Body)
	}
	if r := rest.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer("not-a-token")); r.Status != http.StatusUnauthorized {
		t.Fatalf("a made-up token: %d, want 401", r.Status)
	}
	if r := users.API.Do("DELETE", "/api/v1/sessions/current", nil, testkit.Bearer(customer)); r.Status != http.StatusNoContent {
		t.Fatalf("log out: %d", r.Status)
	}
	r := rest.API.Do("GET", "/api/v1/orders", nil, testkit.Bearer(customer))
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("a logged-out token in the other process: %d %q, want 401 invalid_token", r.Status, r.Header.Get("WWW-Authenticate"))
	}
}

// TestServe_UserModuleDownIs503ForTokensOnly: while the user module does
// not answer, a request with a token gets a 503 problem that says so, and
// anonymous browsing goes on.
func TestServe_UserModuleDownIs503ForTokensOnly(t *testing.T) {
	t.Parallel()
	shop := apptest.Start(t, func(c *app.Config) {
		c.Modules = "product"
		c.UserURL = "http://" + freeAddr(t) // nobody listens there
	})
	// A plain client: the OpenAPI document lists what the modules answer,
	// not what the platform answers when a process is missing.
	req, _ := http.NewRequest("POST", shop.URL+"/api/v1/products", strings.NewReader(`{"sku":"X"}`))
	req.Header.Set("Authorization", "Bearer some-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("a token while the user module is down: %d %s %s, want a 503 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !bytes.Contains(body, []byte("user module")) {
		t.Errorf("the problem does not say what is down: %s", body)
	}
	if r := shop.API.Do("GET", "/api/v1/products", nil); r.Status != http.StatusOK {
		t.Fatalf("anonymous browsing while the user module is down: %d", r.Status)
	}
}

func TestConfig_ModulesTransportAndDatabaseURLsAreChecked(t *testing.T) {
	t.Parallel()
	dbURL := testkit.NewDatabase(t)
	run := func(env map[string]string, args ...string) error {
		full := map[string]string{"MODSHOP_DATABASE_URL": dbURL, "MODSHOP_LOG_LEVEL": "warn"}
		for k, v := range env {
			full[k] = v
		}
		return app.Run(context.Background(), app.Env{Args: args, Stdout: io.Discard, Stderr: io.Discard,
			Lookup: func(k string) (string, bool) { v, ok := full[k]; return v, ok }})
	}
	refused := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"unknown module", map[string]string{"MODSHOP_MODULES": "user,shipping"}, []string{"migrate"}, []string{`unknown module "shipping"`, "user, product, order, payment"}},
		{"no module", nil, []string{"serve", "--modules", " , "}, []string{"name at least one module"}},
		{"unknown transport", map[string]string{"MODSHOP_BUS_TRANSPORT": "kafka"}, []string{"migrate"}, []string{"MODSHOP_BUS_TRANSPORT"}},
		{"bus retention too short", map[string]string{"MODSHOP_BUS_RETENTION": "10s"}, []string{"migrate"}, []string{"MODSHOP_BUS_RETENTION", "at least 1m"}},
		{"group expiry too short", map[string]string{"MODSHOP_BUS_GROUP_EXPIRY": "5m"}, []string{"migrate"}, []string{"MODSHOP_BUS_GROUP_EXPIRY", "at least 1h"}},
		{"module URL not PostgreSQL", map[string]string{"MODSHOP_ORDER_DATABASE_URL": "mysql://db/orders"}, []string{"migrate"}, []string{"MODSHOP_ORDER_DATABASE_URL"}},
		{"no user module, nowhere to check sessions", map[string]string{"MODSHOP_MODULES": "order"}, []string{"serve"}, []string{"MODSHOP_USER_URL"}},
		{"user URL not http", map[string]string{"MODSHOP_MODULES": "order", "MODSHOP_USER_URL": "ftp://users"}, []string{"serve"}, []string{"MODSHOP_USER_URL"}},
		{"module on another database than the bus", map[string]string{"MODSHOP_PAYMENT_DATABASE_URL": testkit.NewDatabase(t)}, []string{"migrate"}, []string{"MODSHOP_PAYMENT_DATABASE_URL", "another database", "rabbitmq"}},
	}
	for _, c := range refused {
		err := run(c.env, c.args...)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	if got := schemas(t, dbURL); got["payments"] {
		t.Fatal("a refused configuration still created the payment module's schema")
	}

	if err := run(map[string]string{"MODSHOP_MODULES": "user"}, "migrate"); err != nil {
		t.Fatalf("migrate the user module alone: %v", err)
	}
	if got := schemas(t, dbURL); !got["users"] || got["products"] || got["orders"] {
		t.Fatalf("schemas after migrating the user module alone: %v", got)
	}
	// The bus's database by another URL (another application name here;
	// another host name or user works the same) is the same database.
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", "modshop-orders")
	u.RawQuery = q.Encode()
	if err := run(map[string]string{"MODSHOP_ORDER_DATABASE_URL": u.String()}, "migrate"); err != nil {
		t.Fatalf("a module URL naming the bus's database differently: %v", err)
	}
	if got := schemas(t, dbURL); !got["orders"] || !got["payments"] {
		t.Fatalf("schemas after migrating every module: %v", got)
	}
}
