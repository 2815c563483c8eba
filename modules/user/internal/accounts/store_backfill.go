package accounts

import (
	"fmt"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
)

// userStates reads up to limit accounts after the id after ("" from the
// first), in id order, as a backfill page carries them.
func userStates(tx *gorm.DB, after string, limit int) ([]events.UserState, error) {
	var rows []events.UserState
	err := tx.Raw(`SELECT id AS user_id, username, display_name, updated_at FROM users
		WHERE id > coalesce(nullif(?, '')::uuid, '00000000-0000-0000-0000-000000000000') ORDER BY id LIMIT ?`, after, limit).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("accounts after %q: %w", after, err)
	}
	return rows, nil
}
