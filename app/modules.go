package app

import (
	"fmt"
	"io/fs"
	"strings"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/modules/order"
	"github.com/modshop/modshop/modules/payment"
	"github.com/modshop/modshop/modules/product"
	"github.com/modshop/modshop/modules/user"
	"github.com/modshop/modshop/platform/module"
)

// Module is a module of the shop as the composition root assembles it:
// its definition, joined here and only here with its migrations. A module
// cannot embed them (go:embed does not reach up out of its folder), so
// they live in migrations/<Name>, and app/walls_modules_test.go keeps
// every other package from making the join.
type Module struct {
	module.Definition
	// Migrations are the module's SQL migrations (goose files).
	Migrations fs.FS
}

// Modules is the shop: every module, in start order, configured from the
// operator's settings. It is the one list of modules; provisioning,
// migration, building, settings, validation, the OpenAPI document and the
// split harness's gateway routes all loop over it. To add a module, add
// its definition here (docs/adding-a-module.md).
func Modules(cfg Config) []Module {
	return withMigrations(
		user.Definition(user.Config{
			SessionTTL:    cfg.SessionTTL,
			SecureCookies: cfg.SecureCookies,
			Throttle: user.ThrottleConfig{
				PerAccountBurst: cfg.LoginPerAccount,
				PerClientBurst:  cfg.LoginPerClient,
				Window:          cfg.LoginWindow,
			},
			RegisterThrottle: user.RegisterThrottleConfig{PerClientBurst: cfg.RegisterPerClient, Window: cfg.RegisterWindow},
			PasswordHashes:   user.HashConfig{Slots: cfg.PasswordHashes, Wait: cfg.PasswordHashWait},
		}),
		product.Definition(product.Config{ReservationTTL: cfg.ReservationTTL, Currency: cfg.currency()}),
		order.Definition(order.Config{StockTimeout: cfg.StockTimeout, PaymentTimeout: cfg.PaymentTimeout, TraceURLTemplate: cfg.TraceURLTemplate, Currency: cfg.currency(),
			ShippingMethods: shippingMethods(cfg.ShippingMethods)}),
		payment.Definition(payment.Config{TestDelay: cfg.PaymentTestDelay, ProviderTimeout: cfg.PaymentProviderTimeout, Currency: cfg.currency()}),
	)
}

// withMigrations joins each definition with its folder of migrations/.
func withMigrations(defs ...module.Definition) []Module {
	out := make([]Module, len(defs))
	for i, d := range defs {
		files, err := migrations.For(d.Name)
		if err != nil { // only a name that is not a path fails: a definition's bug
			panic(fmt.Sprintf("app: migrations of module %q: %v", d.Name, err))
		}
		out[i] = Module{Definition: d, Migrations: files}
	}
	return out
}

// moduleNames lists the modules' names, in start order.
func moduleNames(mods []Module) []string {
	out := make([]string, len(mods))
	for i, m := range mods {
		out[i] = m.Name
	}
	return out
}

// shopModuleNames lists the shop's modules' names, in start order: what
// MODSHOP_MODULES may name. Names do not depend on settings.
func shopModuleNames() []string { return moduleNames(Modules(Config{})) }

// moduleDatabaseFlag and moduleDatabaseEnv name a module's own database
// URL setting, derived from its name.
func moduleDatabaseFlag(name string) string { return name + "-database-url" }

func moduleDatabaseEnv(name string) string {
	return "MODSHOP_" + strings.ToUpper(name) + "_DATABASE_URL"
}

// shippingMethods reads MODSHOP_SHIPPING_METHODS, which validate checks at
// start; a configuration that was not validated gets pickup alone.
func shippingMethods(spec string) []order.ShippingMethod {
	methods, err := order.ParseShippingMethods(spec)
	if err != nil {
		return nil
	}
	return methods
}
