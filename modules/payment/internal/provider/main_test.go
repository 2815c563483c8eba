package provider_test

import (
	"testing"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/payment/internal/testdb"
	"github.com/modshop/modshop/platform/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func ledgerDB(t *testing.T) *gorm.DB { return testdb.Open(t) }
