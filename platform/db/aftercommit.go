package db

import (
	"context"
	"database/sql"

	"gorm.io/gorm"
)

// AfterCommitter is a transaction that can run functions once it has
// committed: for work that must not happen before the commit nor inside it
// (waking another process, say), and need not happen at all when the
// transaction rolls back.
type AfterCommitter interface {
	AfterCommit(f func())
}

// pool is the connection pool under a gorm handle from Gorm: its
// transactions are *Tx.
type pool struct{ *sql.DB }

// BeginTx makes pool a gorm.ConnPoolBeginner.
func (p pool) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := p.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{Tx: tx}, nil
}

// GetDBConn lets gorm's DB() find the *sql.DB.
func (p pool) GetDBConn() (*sql.DB, error) { return p.DB, nil }

// Tx is a transaction begun through a gorm handle from Gorm.
type Tx struct {
	*sql.Tx
	after []func()
}

// AfterCommit runs f after the transaction commits, in the goroutine that
// commits it; never if it rolls back.
func (t *Tx) AfterCommit(f func()) { t.after = append(t.after, f) }

// Commit commits, then runs the functions given to AfterCommit.
func (t *Tx) Commit() error {
	if err := t.Tx.Commit(); err != nil {
		t.after = nil
		return err
	}
	after := t.after
	t.after = nil
	for _, f := range after {
		f()
	}
	return nil
}

// Rollback rolls back and forgets the functions given to AfterCommit.
func (t *Tx) Rollback() error {
	t.after = nil
	return t.Tx.Rollback()
}
