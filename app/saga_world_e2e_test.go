package app_test

import (
	"testing"

	"github.com/modshop/modshop/app/apptest"
	"github.com/modshop/modshop/app/apptest/sagasuite"
)

// The saga's end-to-end tests (*_e2e_test.go here) run the order saga
// across every module of one shop; each module's own tests start only that
// module (modules/*/…_test.go).

// orderJSON is an order as the API shows it.
type orderJSON = sagasuite.Order

// world is a shop with an admin, a customer and a few products.
type world struct {
	*sagasuite.World
	shop *apptest.Shop
}

func newWorld(t *testing.T, stock map[string]int) *world {
	t.Helper()
	shop := apptest.Start(t)
	return &world{World: sagasuite.NewWorld(t, shop, stock), shop: shop}
}
