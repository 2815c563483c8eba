-- +goose Up
-- What a copy of the accounts kept by another module needs (backfill pages,
-- user.backfilled.v1): the display name, and updated_at, the version that
-- user.updated carries, bumped with every change it announces. IF NOT
-- EXISTS: the accounts migration of the same release may add them first.
ALTER TABLE users ADD COLUMN IF NOT EXISTS display_name varchar(100) NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN IF NOT EXISTS updated_at timestamptz;
UPDATE users SET updated_at = created_at WHERE updated_at IS NULL;
ALTER TABLE users ALTER COLUMN updated_at SET DEFAULT now(), ALTER COLUMN updated_at SET NOT NULL;

-- +goose Down
ALTER TABLE users DROP COLUMN IF EXISTS updated_at, DROP COLUMN IF EXISTS display_name;
