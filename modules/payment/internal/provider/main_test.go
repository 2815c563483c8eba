package provider_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// ledgerDB creates a database with the payment module's schema
// provisioned and migrated, and returns a handle acting as the module's
// role, as the running shop gives the module.
func ledgerDB(t *testing.T) *gorm.DB {
	t.Helper()
	files, err := migrations.For("payment")
	if err != nil {
		t.Fatal(err)
	}
	return testkit.NewModuleDatabase(t, testkit.ModuleSpec{Name: "payment", Schema: "payments", Migrations: files}).DB
}
