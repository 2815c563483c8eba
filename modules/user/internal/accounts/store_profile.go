package accounts

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/db"
)

// announcer publishes an account's new public state in the transaction
// that changed it.
type announcer func(tx *gorm.DB, ev events.UserUpdated) error

// changeAccount locks the account, lets change alter it in one transaction
// and, when change reports that the public state (display name, roles,
// standing) changed, stamps updated_at and announces the state as it now
// is. updated_at only grows for an account, even across processes whose
// clocks differ, so that a copy kept from the events can keep the newest.
func (s store) changeAccount(ctx context.Context, userID string, change func(tx *gorm.DB, before userWithRoles) (bool, error), announce announcer) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var rows []userWithRoles
		if err := tx.Raw(selectUsers+` WHERE u.id = ? FOR UPDATE OF u`, userID).Scan(&rows).Error; err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if len(rows) == 0 {
			return errNoUser
		}
		changed, err := change(tx, rows[0])
		if err != nil || !changed {
			return err
		}
		var updatedAt time.Time
		if err := tx.Raw(`UPDATE users SET updated_at = greatest(clock_timestamp(), updated_at + interval '1 microsecond')
			WHERE id = ? RETURNING updated_at`, userID).Scan(&updatedAt).Error; err != nil {
			return fmt.Errorf("stamp user: %w", err)
		}
		if err := tx.Raw(selectUsers+` WHERE u.id = ?`, userID).Scan(&rows).Error; err != nil {
			return fmt.Errorf("read changed user: %w", err)
		}
		u := rows[0].user()
		return announce(tx, events.UserUpdated{UserID: u.ID, Username: u.Username, DisplayName: u.DisplayName,
			Roles: u.Roles, Suspended: u.SuspendedAt != nil, UpdatedAt: updatedAt.UTC()})
	})
}

// passwordHash returns an account's stored hash.
func (s store) passwordHash(ctx context.Context, userID string) (string, error) {
	var hashes []string
	if err := s.db.WithContext(ctx).Raw(`SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hashes).Error; err != nil {
		return "", fmt.Errorf("read password hash of %s: %w", userID, err)
	}
	if len(hashes) == 0 {
		return "", errNoUser
	}
	return hashes[0], nil
}

// profileChange is what PATCH /users/me changes: nil leaves a field alone.
type profileChange struct {
	DisplayName *string
	Email       *string
}

// updateProfile changes the display name and e-mail address; only a new
// display name is announced (the events carry no e-mail address).
func (s store) updateProfile(ctx context.Context, userID string, p profileChange, announce announcer) error {
	return s.changeAccount(ctx, userID, func(tx *gorm.DB, before userWithRoles) (bool, error) {
		if p.Email != nil && *p.Email != before.Email {
			err := tx.Exec(`UPDATE users SET email = ? WHERE id = ?`, *p.Email, userID).Error
			if _, ok := db.IsUniqueViolation(err); ok {
				return false, errEmailTaken
			}
			if err != nil {
				return false, fmt.Errorf("change e-mail: %w", err)
			}
		}
		if p.DisplayName == nil || *p.DisplayName == before.DisplayName {
			return false, nil
		}
		if err := tx.Exec(`UPDATE users SET display_name = ? WHERE id = ?`, *p.DisplayName, userID).Error; err != nil {
			return false, fmt.Errorf("change display name: %w", err)
		}
		return true, nil
	}, announce)
}

// setPassword stores a new hash and ends every session of the account but
// keep (the one that asked), in one transaction.
func (s store) setPassword(ctx context.Context, userID, hash string, keep []byte) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
		if res.Error != nil {
			return fmt.Errorf("change password: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errNoUser
		}
		if err := tx.Exec(`UPDATE sessions SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL AND token_hash <> ?`,
			userID, keep).Error; err != nil {
			return fmt.Errorf("end other sessions: %w", err)
		}
		return nil
	})
}

// setSuspended suspends an account (by is the admin), ending every one of
// its sessions, or with by == "" reinstates it; a change of standing is
// announced, asking for the standing it has changes nothing.
func (s store) setSuspended(ctx context.Context, userID, by string, announce announcer) error {
	return s.changeAccount(ctx, userID, func(tx *gorm.DB, before userWithRoles) (bool, error) {
		if (by != "") == (before.SuspendedAt != nil) {
			return false, nil
		}
		if by == "" {
			if err := tx.Exec(`UPDATE users SET suspended_at = NULL, suspended_by = NULL WHERE id = ?`, userID).Error; err != nil {
				return false, fmt.Errorf("reinstate: %w", err)
			}
			return true, nil
		}
		if err := tx.Exec(`UPDATE users SET suspended_at = now(), suspended_by = ? WHERE id = ?`, by, userID).Error; err != nil {
			return false, fmt.Errorf("suspend: %w", err)
		}
		if err := tx.Exec(`UPDATE sessions SET revoked_at = now() WHERE user_id = ? AND revoked_at IS NULL`, userID).Error; err != nil {
			return false, fmt.Errorf("end sessions: %w", err)
		}
		return true, nil
	}, announce)
}
