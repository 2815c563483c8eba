// Package testdb gives the payment module's inside tests a database of
// their own with the payments schema migrated, acting as the module's role
// as the running shop does. Only tests import it.
package testdb

import (
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/migrations"
	"github.com/modshop/modshop/platform/testkit"
)

// Schema is the payment module's schema.
const Schema = "payments"

// Open creates a new database, provisions and migrates the payments
// schema, and returns a handle that acts as the module's role.
func Open(tb testing.TB) *gorm.DB {
	tb.Helper()
	files, err := migrations.For("payment")
	if err != nil {
		tb.Fatal(err)
	}
	return testkit.ModuleDB(tb, Schema, files, 8)
}
