// Package events is the user module's public face on the bus: its event
// types and their stable, versioned names. It is the only package of the
// user module that other modules may import.
//
// It imports only the standard library. Each event's wire shape is frozen
// in testdata/<event name>.json; a field may be added, while removing,
// renaming or retyping one makes a new version beside the old (docs/bus.md,
// "Evolving an event").
package events

import "time"

// UserRegisteredV1 names the event announcing a new account.
const UserRegisteredV1 = "user.registered.v1"

// UserRegistered is published when an account is created, in the same
// transaction. It carries no e-mail address: consumers that need contact
// details must not copy them around.
type UserRegistered struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
	// DisplayName is the name the account holder gave to be addressed by
	// ("" when none was given); staff pages show it.
	DisplayName  string    `json:"display_name"`
	Roles        []string  `json:"roles"`
	RegisteredAt time.Time `json:"registered_at"`
}

// EventName is the event's stable, versioned name on the bus.
func (UserRegistered) EventName() string { return UserRegisteredV1 }

// UserUpdatedV1 names the event announcing a changed account.
const UserUpdatedV1 = "user.updated.v1"

// UserUpdated is published, in the same transaction, when an account's
// display name, roles or standing (suspended or not) change. It carries the
// account's whole public state, so a copy kept from events needs only the
// latest one (UpdatedAt orders them); like UserRegistered, it carries no
// e-mail address.
type UserUpdated struct {
	UserID      string    `json:"user_id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	Suspended   bool      `json:"suspended"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// EventName is the event's stable, versioned name on the bus.
func (UserUpdated) EventName() string { return UserUpdatedV1 }

// UsersBackfilledV1 names a page of accounts published for a copy.
const UsersBackfilledV1 = "user.backfilled.v1"

// UserState is one account as a backfill page carries it: what a copy
// keeps of it, and UpdatedAt, the version user.updated carries (a copy
// keeps the newest). Like the other user events, no e-mail address.
type UserState struct {
	UserID      string    `json:"user_id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// UsersBackfilled is one page of the accounts as they are now, published
// in answer to a backfill request (bus.BackfillRequested) for "user". Last
// says the request's final page has come.
type UsersBackfilled struct {
	RequestID string      `json:"request_id"`
	Users     []UserState `json:"users"`
	Last      bool        `json:"last"`
}

// EventName is the event's stable, versioned name on the bus.
func (UsersBackfilled) EventName() string { return UsersBackfilledV1 }
