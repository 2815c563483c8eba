package accounts

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/modshop/modshop/modules/user/events"
	"github.com/modshop/modshop/platform/apperr"
	"github.com/modshop/modshop/platform/auth"
)

// errSuspended is what a suspended account's holder gets at log-in.
var errSuspended = apperr.Forbidden("account suspended: this account can neither log in nor order; ask the shop to reinstate it")

// announce publishes user.updated.v1 in the transaction that made the change.
func (s *Service) announce(ctx context.Context) announcer {
	return func(tx *gorm.DB, ev events.UserUpdated) error { return s.publisher.Publish(ctx, tx, ev) }
}

// ProfileUpdate is what PATCH /users/me sends: a field left out is not
// changed; a new e-mail address needs the current password.
type ProfileUpdate struct {
	DisplayName     *string `json:"display_name"`
	Email           *string `json:"email"`
	CurrentPassword string  `json:"current_password"`
}

// UpdateProfile changes the caller's display name and e-mail address.
func (s *Service) UpdateProfile(ctx context.Context, caller auth.Identity, p ProfileUpdate) (User, error) {
	var errs []apperr.FieldError
	if p.DisplayName != nil {
		name := strings.TrimSpace(*p.DisplayName)
		p.DisplayName = &name
		if msg := displayNameProblem(name); msg != "" {
			errs = append(errs, apperr.FieldError{Field: "display_name", Message: msg})
		}
	}
	if p.Email != nil {
		email := strings.ToLower(strings.TrimSpace(*p.Email))
		p.Email = &email
		if msg := emailProblem(email); msg != "" {
			errs = append(errs, apperr.FieldError{Field: "email", Message: msg})
		}
		if p.CurrentPassword == "" {
			errs = append(errs, apperr.FieldError{Field: "current_password", Message: "is required to change your e-mail address"})
		}
	}
	if len(errs) > 0 {
		return User{}, apperr.Invalid(errs...)
	}
	if p.Email != nil {
		if err := s.checkPassword(ctx, caller.UserID, p.CurrentPassword); err != nil {
			return User{}, err
		}
	}
	err := s.store.updateProfile(ctx, caller.UserID, profileChange{DisplayName: p.DisplayName, Email: p.Email}, s.announce(ctx))
	if errors.Is(err, errNoUser) {
		return User{}, apperr.Unauthorized("this account no longer exists")
	}
	if err != nil {
		return User{}, takenError(err)
	}
	return s.store.userByID(ctx, caller.UserID)
}

// PasswordChange is what PUT /users/me/password sends.
type PasswordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword sets a new password when the current one is given, and
// ends every other session of the account: whoever else held one (a stolen
// token, a forgotten shared computer) must now log in with the new
// password. The session that asked is kept.
func (s *Service) ChangePassword(ctx context.Context, caller auth.Identity, p PasswordChange) error {
	u, err := s.store.userByID(ctx, caller.UserID)
	if errors.Is(err, errNoUser) {
		return apperr.Unauthorized("this account no longer exists")
	}
	if err != nil {
		return err
	}
	var errs []apperr.FieldError
	if p.CurrentPassword == "" {
		errs = append(errs, apperr.FieldError{Field: "current_password", Message: "is required"})
	}
	for _, e := range validatePassword(p.NewPassword, u.Username, u.Email) {
		errs = append(errs, apperr.FieldError{Field: "new_password", Message: e.Message})
	}
	if len(errs) > 0 {
		return apperr.Invalid(errs...)
	}
	if err := s.checkPassword(ctx, u.ID, p.CurrentPassword); err != nil {
		return err
	}
	hash, err := s.hashes.hash(ctx, p.NewPassword)
	if err != nil {
		return err
	}
	keep, ok := hashToken(caller.Token)
	if !ok {
		keep = []byte{} // matches no session: every one ends (NULL would match none and end none)
	}
	if err := s.store.setPassword(ctx, u.ID, hash, keep); err != nil {
		return err
	}
	s.settle(ctx)
	return nil
}

// checkPassword verifies an account holder's current password under the
// account's log-in throttle: a stolen session cannot guess it faster than
// a log-in could, and guesses here and at log-in share one budget.
func (s *Service) checkPassword(ctx context.Context, userID, password string) error {
	if len(password) > 4*MaxPasswordLen {
		return apperr.InvalidField("current_password", "is not your password")
	}
	key := "user:" + userID
	wait, err := s.loginPerAccount.take(ctx, key)
	if err != nil {
		return err
	}
	if wait > 0 {
		return apperr.Throttled("too many password attempts for this account; try again later", wait)
	}
	hash, err := s.store.passwordHash(ctx, userID)
	if err != nil {
		return err
	}
	ok, err := s.hashes.verify(ctx, password, hash)
	if s.hashes.notRun(err) {
		return errors.Join(err, s.loginPerAccount.refund(context.WithoutCancel(ctx), key))
	}
	if err != nil {
		return fmt.Errorf("verify password of user %s: %w", userID, err)
	}
	if !ok {
		return apperr.InvalidField("current_password", "is not your password")
	}
	return s.loginPerAccount.forget(ctx, key)
}

// Suspend suspends an account: its sessions end at once, and it can
// neither log in nor order until reinstated. An admin cannot suspend
// themselves (a shop would lose its last operator by accident).
func (s *Service) Suspend(ctx context.Context, caller auth.Identity, userID string) (User, error) {
	parsed, err := uuid.Parse(userID)
	if err != nil {
		return User{}, errNoSuchUser
	}
	if parsed.String() == caller.UserID {
		return User{}, apperr.Conflict("you cannot suspend your own account; ask another admin")
	}
	return s.setStanding(ctx, parsed.String(), caller.UserID)
}

// Reinstate lifts a suspension: the holder may log in and order again.
func (s *Service) Reinstate(ctx context.Context, userID string) (User, error) {
	parsed, err := uuid.Parse(userID)
	if err != nil {
		return User{}, errNoSuchUser
	}
	return s.setStanding(ctx, parsed.String(), "")
}

func (s *Service) setStanding(ctx context.Context, userID, by string) (User, error) {
	err := s.store.setSuspended(ctx, userID, by, s.announce(ctx))
	if errors.Is(err, errNoUser) {
		return User{}, errNoSuchUser
	}
	if err != nil {
		return User{}, err
	}
	s.settle(ctx)
	return s.store.userByID(ctx, userID)
}
