package db

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Provision creates a module's role and schema if they are missing and
// gives the role rights on that schema only. It runs as the administrative
// user, which must be allowed to create roles (a superuser, or a user with
// CREATEROLE that owns the database). It is safe to run concurrently from
// several processes: roles are cluster-wide and creation races are expected.
func Provision(ctx context.Context, admin *sql.DB, schema string) error {
	if !identifier.MatchString(schema) {
		return fmt.Errorf("invalid schema name %q", schema)
	}
	role := pgx.Identifier{RoleFor(schema)}.Sanitize()
	sch := pgx.Identifier{schema}.Sanitize()
	lit := quoteLiteral(RoleFor(schema))
	stmts := []string{
		// Roles are shared by every database of the cluster, so two
		// processes may race here; losing the race is fine.
		`DO $$ BEGIN
		   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ` + lit + `) THEN
		     CREATE ROLE ` + role + ` NOLOGIN;
		   END IF;
		 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
		 END $$`,
		// The connecting user acts as the module's role (SET ROLE).
		`DO $$ BEGIN
		   IF NOT pg_has_role(current_user, ` + lit + `, 'MEMBER') THEN
		     EXECUTE format('GRANT %I TO %I', ` + lit + `, current_user);
		   END IF;
		 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
		 END $$`,
		`CREATE SCHEMA IF NOT EXISTS ` + sch + ` AUTHORIZATION ` + role,
		`ALTER SCHEMA ` + sch + ` OWNER TO ` + role,
		`REVOKE ALL ON SCHEMA ` + sch + ` FROM PUBLIC`,
	}
	for _, stmt := range stmts {
		if err := execRetry(ctx, admin, stmt); err != nil {
			return fmt.Errorf("provision schema %s: %w", schema, err)
		}
	}
	return nil
}

// execRetry runs stmt, retrying a few times when a concurrent provisioning
// of the same cluster-wide objects collides with it.
func execRetry(ctx context.Context, admin *sql.DB, stmt string) error {
	var err error
	for range 5 {
		if _, err = admin.ExecContext(ctx, stmt); err == nil {
			return nil
		}
		if !isConcurrencyError(err) {
			return err
		}
	}
	return err
}

func quoteLiteral(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
