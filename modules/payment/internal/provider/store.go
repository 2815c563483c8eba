package provider

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// SQLRecords keeps the books in the table test_provider_operations, so
// that they outlive a restart as a real provider's do: a payment claimed
// before a crash and retried after it is answered from them. Each call is
// one statement of its own, never part of a ledger transaction.
type SQLRecords struct{ db *gorm.DB }

// NewSQLRecords keeps the books through db (the payment module's pool).
func NewSQLRecords(db *gorm.DB) *SQLRecords { return &SQLRecords{db: db} }

const selectRecord = `SELECT kind, idempotency_key AS key, ref, outcome, method, amount::text AS amount, target
	FROM test_provider_operations`

// Find implements Records.
func (s *SQLRecords) Find(ctx context.Context, kind, key string) (Record, bool, error) {
	return s.one(ctx, selectRecord+` WHERE kind = ? AND idempotency_key = ?`, kind, key)
}

// ByRef implements Records.
func (s *SQLRecords) ByRef(ctx context.Context, ref string) (Record, bool, error) {
	return s.one(ctx, selectRecord+` WHERE ref = ?`, ref)
}

func (s *SQLRecords) one(ctx context.Context, query string, args ...any) (Record, bool, error) {
	var rows []Record
	if err := s.db.WithContext(ctx).Raw(query, args...).Scan(&rows).Error; err != nil {
		return Record{}, false, fmt.Errorf("test provider records: %w", err)
	}
	if len(rows) == 0 {
		return Record{}, false, nil
	}
	return rows[0], true, nil
}

// Add implements Records.
func (s *SQLRecords) Add(ctx context.Context, r Record) (Record, error) {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO test_provider_operations (kind, idempotency_key, ref, outcome, method, amount, target)
		VALUES (?, ?, ?, ?, ?, ?::numeric, ?) ON CONFLICT (kind, idempotency_key) DO NOTHING`,
		r.Kind, r.Key, r.Ref, r.Outcome, r.Method, r.Amount, r.Target)
	if c, dup := db.IsUniqueViolation(res.Error); dup && c == "test_provider_one_capture" {
		return Record{}, ErrTargetTaken
	}
	if res.Error != nil {
		return Record{}, fmt.Errorf("test provider records: %w", res.Error)
	}
	if res.RowsAffected == 1 {
		return r, nil
	}
	old, ok, err := s.Find(ctx, r.Kind, r.Key)
	if err == nil && !ok {
		err = fmt.Errorf("test provider records: %s %s vanished", r.Kind, r.Key)
	}
	return old, err
}

// AddToTarget implements Records in one statement, where ByRef and then
// Add take two: the usual capture or refund is the first with its key, on
// a target that allows it. The unique indexes keep a key and a target to
// one operation, as they do for Add. (TestMode's amounts are written one
// way only, "12.50", so comparing them as numbers compares them as text.)
func (s *SQLRecords) AddToTarget(ctx context.Context, r Record, targetKind, targetOutcome string) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO test_provider_operations (kind, idempotency_key, ref, outcome, method, amount, target)
		SELECT ?, ?, ?, ?, ?, ?::numeric, ?
		 WHERE EXISTS (SELECT 1 FROM test_provider_operations
		                WHERE ref = ? AND kind = ? AND outcome = ? AND amount = ?::numeric)
		ON CONFLICT (kind, idempotency_key) DO NOTHING`,
		r.Kind, r.Key, r.Ref, r.Outcome, r.Method, r.Amount, r.Target,
		r.Target, targetKind, targetOutcome, r.Amount)
	if _, dup := db.IsUniqueViolation(res.Error); dup {
		return false, nil // another operation took the target; the caller's Add says so
	}
	if res.Error != nil {
		return false, fmt.Errorf("test provider records: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// AddRefund implements Records in one statement. Two refunds of one
// capture made at once could both fit alone and not together; the
// ledger, which never asks for more than a capture (its trigger
// refunds_within_capture), is what keeps that from happening.
func (s *SQLRecords) AddRefund(ctx context.Context, r Record) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`INSERT INTO test_provider_operations (kind, idempotency_key, ref, outcome, method, amount, target)
		SELECT 'refund', ?, ?, ?, ?, ?::numeric, ?
		  FROM test_provider_operations c
		 WHERE c.ref = ? AND c.kind = 'capture' AND c.outcome = ?
		   AND (SELECT coalesce(sum(amount), 0) FROM test_provider_operations WHERE kind = 'refund' AND target = c.ref) + ?::numeric <= c.amount
		ON CONFLICT (kind, idempotency_key) DO NOTHING`,
		r.Key, r.Ref, r.Outcome, r.Method, r.Amount, r.Target, r.Target, outcomeDone, r.Amount)
	if res.Error != nil {
		return false, fmt.Errorf("test provider records: %w", res.Error)
	}
	return res.RowsAffected == 1, nil
}

// Count implements Records.
func (s *SQLRecords) Count(ctx context.Context, kind string) (int, error) {
	var n int
	if err := s.db.WithContext(ctx).Raw(`SELECT count(*) FROM test_provider_operations WHERE kind = ?`, kind).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("test provider records: %w", err)
	}
	return n, nil
}
