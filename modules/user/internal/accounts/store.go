package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/cursor"
	"github.com/modshop/modshop/platform/db"
)

// User is an account as the module shows it: never with its hash.
type User struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	DisplayName string   `json:"display_name"`
	Email       string   `json:"email"`
	Roles       []string `json:"roles"`
	// SuspendedAt and SuspendedBy (the admin) are null while the account
	// is in good standing.
	SuspendedAt *time.Time `json:"suspended_at"`
	SuspendedBy *string    `json:"suspended_by"`
	CreatedAt   time.Time  `json:"created_at"`
}

type userRow struct {
	ID           string
	Username     string
	DisplayName  string
	Email        string
	PasswordHash string
	SuspendedAt  *time.Time
	CreatedAt    time.Time
}

var (
	errUsernameTaken = errors.New("username taken")
	errEmailTaken    = errors.New("email taken")
	errNoUser        = errors.New("no such user")
	errUnknownRole   = errors.New("unknown role")
)

// store and throttleTable (store_throttle.go) are the only code that
// touches the users schema.
type store struct{ db *gorm.DB }

// createUser inserts the account and its roles, and calls announce in the
// same transaction so the event commits or rolls back with the account.
func (s store) createUser(ctx context.Context, u userRow, roles []string, announce func(tx *gorm.DB) error) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`INSERT INTO users (id, username, display_name, email, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, u.DisplayName, u.Email, u.PasswordHash, u.CreatedAt, u.CreatedAt).Error
		if constraint, ok := db.IsUniqueViolation(err); ok {
			if constraint == "users_email_key" {
				return errEmailTaken
			}
			return errUsernameTaken
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		for _, r := range roles {
			if err := tx.Exec(`INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, u.ID, r).Error; err != nil {
				return fmt.Errorf("grant role %s: %w", r, err)
			}
		}
		return announce(tx)
	})
}

// namesFree returns errUsernameTaken or errEmailTaken when an account
// already has the username (in any case) or the e-mail address. It is a
// cheap look before the hash; the unique indexes still decide at insert.
func (s store) namesFree(ctx context.Context, username, email string) error {
	var taken []struct{ Username, Email string }
	err := s.db.WithContext(ctx).Raw(
		`SELECT username, email FROM users WHERE lower(username) = lower(?) OR email = ? LIMIT 2`, username, email).Scan(&taken).Error
	if err != nil {
		return fmt.Errorf("check names: %w", err)
	}
	for _, u := range taken {
		if strings.EqualFold(u.Username, username) {
			return errUsernameTaken
		}
	}
	if len(taken) > 0 {
		return errEmailTaken
	}
	return nil
}

// userByLogin finds an account by username (any case) or e-mail.
func (s store) userByLogin(ctx context.Context, login string) (userRow, error) {
	var rows []userRow
	err := s.db.WithContext(ctx).Raw(
		`SELECT id, username, display_name, email, password_hash, suspended_at, created_at FROM users
		  WHERE lower(username) = lower(?) OR email = lower(?) LIMIT 1`, login, login).Scan(&rows).Error
	if err != nil {
		return userRow{}, fmt.Errorf("find user by login: %w", err)
	}
	if len(rows) == 0 {
		return userRow{}, errNoUser
	}
	return rows[0], nil
}

type userWithRoles struct {
	ID          string
	Username    string
	DisplayName string
	Email       string
	SuspendedAt *time.Time
	SuspendedBy *string
	CreatedAt   time.Time
	Roles       string // comma-separated, sorted
}

func (r userWithRoles) user() User {
	u := User{ID: r.ID, Username: r.Username, DisplayName: r.DisplayName, Email: r.Email, SuspendedAt: r.SuspendedAt,
		SuspendedBy: r.SuspendedBy, CreatedAt: r.CreatedAt, Roles: []string{}}
	if r.Roles != "" {
		u.Roles = splitRoles(r.Roles)
	}
	return u
}

const selectUsers = `SELECT u.id, u.username, u.display_name, u.email, u.suspended_at, u.suspended_by, u.created_at,
       coalesce((SELECT string_agg(role, ',' ORDER BY role) FROM user_roles WHERE user_id = u.id), '') AS roles
  FROM users u`

func (s store) userByID(ctx context.Context, id string) (User, error) {
	var rows []userWithRoles
	if err := s.db.WithContext(ctx).Raw(selectUsers+` WHERE u.id = ?`, id).Scan(&rows).Error; err != nil {
		return User{}, fmt.Errorf("find user %s: %w", id, err)
	}
	if len(rows) == 0 {
		return User{}, errNoUser
	}
	return rows[0].user(), nil
}

// listUsers pages through accounts in sign-up order, keyset-paginated on
// (created_at, id) so pages stay stable while people register; a non-empty
// search keeps those whose username, e-mail or display name contain it
// (any case).
func (s store) listUsers(ctx context.Context, search string, after *cursor.Keyset, limit int) ([]User, error) {
	where, args := []string{"true"}, []any{}
	if search != "" {
		like := "%" + likeEscaper.Replace(search) + "%"
		where = append(where, `(u.username ILIKE ? OR u.email ILIKE ? OR u.display_name ILIKE ?)`)
		args = append(args, like, like, like)
	}
	if after != nil {
		where = append(where, `(u.created_at, u.id) > (?, ?)`)
		args = append(args, after.CreatedAt, after.ID)
	}
	var rows []userWithRoles
	err := s.db.WithContext(ctx).Raw(selectUsers+` WHERE `+strings.Join(where, " AND ")+` ORDER BY u.created_at, u.id LIMIT ?`,
		append(args, limit)...).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]User, len(rows))
	for i, r := range rows {
		out[i] = r.user()
	}
	return out, nil
}

// likeEscaper makes a search term match itself in ILIKE (backslash is
// PostgreSQL's default escape).
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// setRoles replaces a user's roles in one transaction, announcing the new
// state when they changed.
func (s store) setRoles(ctx context.Context, userID string, roles []string, announce announcer) error {
	return s.changeAccount(ctx, userID, func(tx *gorm.DB, before userWithRoles) (bool, error) {
		if strings.Join(roles, ",") == before.Roles {
			return false, nil
		}
		var known int64
		if err := tx.Raw(`SELECT count(*) FROM roles WHERE name IN ?`, append(roles, "")).Scan(&known).Error; err != nil {
			return false, fmt.Errorf("check roles: %w", err)
		}
		if int(known) != len(roles) {
			return false, errUnknownRole
		}
		if err := tx.Exec(`DELETE FROM user_roles WHERE user_id = ?`, userID).Error; err != nil {
			return false, fmt.Errorf("clear roles: %w", err)
		}
		for _, r := range roles {
			if err := tx.Exec(`INSERT INTO user_roles (user_id, role) VALUES (?, ?)`, userID, r).Error; err != nil {
				return false, fmt.Errorf("grant role %s: %w", r, err)
			}
		}
		return true, nil
	}, announce)
}

func (s store) roleNames(ctx context.Context) ([]string, error) {
	var names []string
	if err := s.db.WithContext(ctx).Raw(`SELECT name FROM roles ORDER BY name`).Scan(&names).Error; err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	return names, nil
}

// maxSessionsPerUser is the most live sessions one user has: a log-in
// beyond ends the oldest (each session is a row, and only the log-in
// throttle limited how fast they came).
const maxSessionsPerUser = 20

func (s store) createSession(ctx context.Context, userID string, tokenHash []byte, expires time.Time, userAgent, clientAddr string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// One log-in of a user at a time, so that each sees the sessions
		// the others made (a row lock: the session's foreign key only
		// shares the row, so it does not wait on it). Taken first, before
		// any session row.
		if err := tx.Exec(`SELECT 1 FROM users WHERE id = ? FOR NO KEY UPDATE`, userID).Error; err != nil {
			return fmt.Errorf("lock user for a new session: %w", err)
		}
		// The user's ended sessions go, and so do the oldest live ones
		// beyond the bound, making room for this one.
		if err := tx.Exec(`DELETE FROM sessions WHERE user_id = ? AND (revoked_at IS NOT NULL OR expires_at <= now() OR id IN (
			SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL AND expires_at > now()
			 ORDER BY created_at DESC, id DESC OFFSET ?))`, userID, userID, maxSessionsPerUser-1).Error; err != nil {
			return fmt.Errorf("end the oldest sessions: %w", err)
		}
		err := tx.Exec(`INSERT INTO sessions (user_id, token_hash, expires_at, user_agent, client_addr) VALUES (?, ?, ?, ?, ?)`,
			userID, tokenHash, expires, userAgent, clientAddr).Error
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		// Housekeeping while we are here: drop long-dead sessions, anyone's
		// (users who never come back leave theirs too), a batch at a time:
		// each log-in adds one session and removes up to a hundred. It
		// locks other users' sessions, which their own log-ins' DELETE
		// above waits for; so it comes last, skipping what others hold, and
		// nothing this transaction does after it can wait: a log-in that
		// waits for it never waits for one that waits for it (a deadlock).
		if err := tx.Exec(`DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at < now() - interval '7 days'
			 LIMIT 100 FOR UPDATE SKIP LOCKED)`).Error; err != nil {
			return fmt.Errorf("purge old sessions: %w", err)
		}
		return nil
	})
}

type sessionUser struct {
	UserID    string
	Username  string
	Roles     string
	ExpiresAt time.Time
}

func (s store) sessionUser(ctx context.Context, tokenHash []byte) (sessionUser, error) {
	var rows []sessionUser
	err := s.db.WithContext(ctx).Raw(`
		SELECT u.id AS user_id, u.username,
		       coalesce((SELECT string_agg(role, ',' ORDER BY role) FROM user_roles WHERE user_id = u.id), '') AS roles,
		       s.expires_at
		  FROM sessions s JOIN users u ON u.id = s.user_id
		 WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > now() AND u.suspended_at IS NULL`, tokenHash).Scan(&rows).Error
	if err != nil {
		return sessionUser{}, fmt.Errorf("find session: %w", err)
	}
	if len(rows) == 0 {
		return sessionUser{}, errNoUser
	}
	return rows[0], nil
}

// notifySessions announces payload on the session channel, as the
// triggers of migration user 0005 do (settle's barrier).
func (s store) notifySessions(ctx context.Context, payload string) error {
	if err := s.db.WithContext(ctx).Exec(`SELECT pg_notify(?, ?)`, sessionChannel, payload).Error; err != nil {
		return fmt.Errorf("notify %s: %w", sessionChannel, err)
	}
	return nil
}

// sessionListeners counts the connections to this database that listen
// for session changes (named name once they listen).
func (s store) sessionListeners(ctx context.Context, name string) (int, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = ?`,
		name).Scan(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count session listeners: %w", err)
	}
	return int(n), nil
}

func (s store) revokeSession(ctx context.Context, tokenHash []byte) error {
	err := s.db.WithContext(ctx).Exec(`UPDATE sessions SET revoked_at = now() WHERE token_hash = ? AND revoked_at IS NULL`, tokenHash).Error
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}
