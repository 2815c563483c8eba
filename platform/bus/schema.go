package bus

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/modshop/modshop/platform/db"
)

// Schema holds the bus tables: one messages table and one offsets table per
// topic, and the dead letters. It is the only surface modules share.
const Schema = "bus"

// publisherRole is granted to every module role: it may append to the
// messages tables and nothing else in the bus schema.
const publisherRole = "modshop_bus_publisher"

// Provision creates the bus schema and role, and lets each module's role
// publish. It runs as the administrative user, after db.Provision of the
// modules.
func Provision(ctx context.Context, admin *sql.DB, moduleSchemas ...string) error {
	if err := db.Provision(ctx, admin, Schema); err != nil {
		return err
	}
	pub := pgx.Identifier{publisherRole}.Sanitize()
	stmts := []string{
		`DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '` + publisherRole + `') THEN
		     CREATE ROLE ` + pub + ` NOLOGIN;
		   END IF;
		 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
		 END $$`,
		`GRANT USAGE ON SCHEMA ` + Schema + ` TO ` + pub,
	}
	for _, s := range moduleSchemas {
		stmts = append(stmts, `GRANT `+pub+` TO `+pgx.Identifier{db.RoleFor(s)}.Sanitize())
	}
	for _, stmt := range stmts {
		if err := execRetry(ctx, admin, stmt); err != nil {
			return fmt.Errorf("provision bus: %w", err)
		}
	}
	return nil
}

func execRetry(ctx context.Context, conn *sql.DB, stmt string) error {
	var err error
	for range 5 {
		if _, err = conn.ExecContext(ctx, stmt); err == nil {
			return nil
		}
		if lostCreateRace(err) {
			continue
		}
		return err
	}
	return err
}

// lostCreateRace reports an error of a statement that lost a race to create
// the same object as another session.
func lostCreateRace(err error) bool {
	switch db.SQLState(err) {
	case "23505", "42710", "42P07", "40001", "40P01", "XX000":
		return true
	}
	return false
}

// messagesTable and offsetsTable name a topic's tables, schema-qualified.
func messagesTable(topic string) string {
	return pgx.Identifier{Schema, "m_" + topic}.Sanitize()
}

func offsetsTable(topic string) string {
	return pgx.Identifier{Schema, "o_" + topic}.Sanitize()
}

// ensureTables creates the bus's own tables and each topic's tables (as
// the bus role, which owns them) and lets publishers append to the topics.
func ensureTables(ctx context.Context, busDB *sql.DB, topics []string) error {
	stmts := []string{`
		CREATE TABLE IF NOT EXISTS dead_letters (
			id          bigserial PRIMARY KEY,
			message_id  varchar(36) NOT NULL,
			topic       text        NOT NULL,
			handler     text        NOT NULL,
			payload     jsonb,
			metadata    jsonb       NOT NULL DEFAULT '{}',
			error       text        NOT NULL,
			attempts    int         NOT NULL,
			failed_at   timestamptz NOT NULL DEFAULT now(),
			replays     int         NOT NULL DEFAULT 0,
			resolved_at timestamptz,
			resolution  text CHECK (resolution IN ('replayed', 'discarded'))
		)`,
		`CREATE INDEX IF NOT EXISTS dead_letters_open_idx ON dead_letters (failed_at) WHERE resolved_at IS NULL`,
		// When a subscriber of each consumer group last ran (retention.go).
		`CREATE TABLE IF NOT EXISTS consumer_groups (
			topic          text        NOT NULL,
			consumer_group text        NOT NULL,
			last_seen      timestamptz NOT NULL,
			PRIMARY KEY (topic, consumer_group)
		)`,
		// A group retrying a transient failure (transient.go): since when,
		// the last error, how many retries; NULL and 0 when it is not.
		// Added to the table of databases made before them; only then, since
		// ALTER TABLE locks the table against every heartbeat even when it
		// has nothing to add.
		`DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_attribute
		                   WHERE attrelid = 'consumer_groups'::regclass AND attname = 'retries' AND NOT attisdropped) THEN
		     ALTER TABLE consumer_groups
		       ADD COLUMN IF NOT EXISTS retrying_since timestamptz,
		       ADD COLUMN IF NOT EXISTS last_error     text,
		       ADD COLUMN IF NOT EXISTS retries        bigint NOT NULL DEFAULT 0;
		   END IF;
		 END $$`,
		// How many messages were pruned from each topic's table, per
		// destination topic (the outbox's rows carry theirs; otherwise the
		// topic itself), and when the newest was published: published
		// counts and times stay whole.
		`CREATE TABLE IF NOT EXISTS pruned (
			topic       text        NOT NULL,
			destination text        NOT NULL,
			messages    bigint      NOT NULL,
			newest      timestamp   NOT NULL, -- created_at of the newest pruned
			last_pruned timestamptz NOT NULL,
			PRIMARY KEY (topic, destination)
		)`,
	}
	for _, t := range topics {
		stmts = append(stmts,
			`CREATE TABLE IF NOT EXISTS `+messagesTable(t)+` (
				"offset"       bigserial,
				"uuid"         varchar(36) NOT NULL,
				"created_at"   timestamp   NOT NULL DEFAULT CURRENT_TIMESTAMP,
				"payload"      json DEFAULT NULL,
				"metadata"     json DEFAULT NULL,
				"transaction_id" xid8      NOT NULL,
				PRIMARY KEY ("transaction_id", "offset")
			)`,
			`CREATE TABLE IF NOT EXISTS `+offsetsTable(t)+` (
				consumer_group varchar(255) NOT NULL PRIMARY KEY,
				offset_acked   bigint,
				last_processed_transaction_id xid8 NOT NULL
			)`,
			`GRANT INSERT ON `+messagesTable(t)+` TO `+publisherRole,
		)
	}
	stmts = append(stmts, `GRANT USAGE ON ALL SEQUENCES IN SCHEMA `+Schema+` TO `+publisherRole)
	for _, s := range stmts {
		if err := execRetry(ctx, busDB, s); err != nil {
			return fmt.Errorf("create bus tables: %w", err)
		}
	}
	return nil
}

// inboxDDL is the table in each consuming module's own schema that records
// which messages each of its handlers has applied; it is written in the same
// transaction as the handler's effect.
const inboxDDL = `CREATE TABLE IF NOT EXISTS processed_messages (
	handler      text        NOT NULL,
	message_id   varchar(36) NOT NULL,
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (handler, message_id)
)`

// ensureInbox creates the inbox table in a consuming module's schema. Two
// processes of one module starting together both run it, and PostgreSQL's
// CREATE TABLE IF NOT EXISTS is not safe against that race (the loser gets
// a unique violation on pg_type): the race is retried as execRetry does.
// The module's pool may bound its statements for HTTP requests
// (MODSHOP_STATEMENT_TIMEOUT); creating the table is not under it.
func ensureInbox(ctx context.Context, module *gorm.DB) error {
	conn, err := module.DB()
	if err != nil {
		return err
	}
	create := func() error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, db.LiftStatementTimeout); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, inboxDDL); err != nil {
			return err
		}
		return tx.Commit()
	}
	for range 4 {
		if err = create(); err == nil || !lostCreateRace(err) {
			return err
		}
	}
	return create()
}
