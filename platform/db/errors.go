package db

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLState returns the PostgreSQL error code in err, or "".
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// IsUniqueViolation reports whether err is a unique constraint violation,
// and on which constraint.
func IsUniqueViolation(err error) (constraint string, ok bool) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return pgErr.ConstraintName, true
	}
	return "", false
}

func isConcurrencyError(err error) bool {
	switch SQLState(err) {
	case "23505", "42710", "40001", "40P01", "XX000":
		return true
	}
	return false
}
