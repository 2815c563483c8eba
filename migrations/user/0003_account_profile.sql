-- +goose Up
-- Accounts gain a display name (how the holder wants to be addressed; ""
-- when none was given), a standing (suspended_at and the admin who
-- suspended, NULL while in good standing) and updated_at, which orders the
-- user.updated.v1 events a copy is kept from.
ALTER TABLE users
    ADD COLUMN display_name varchar(100) NOT NULL DEFAULT '',
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN suspended_by uuid,
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT users_display_name_trimmed CHECK (display_name = btrim(display_name)),
    ADD CONSTRAINT users_suspended_by_with_at CHECK ((suspended_at IS NULL) = (suspended_by IS NULL));
UPDATE users SET updated_at = created_at;

-- +goose Down
ALTER TABLE users
    DROP COLUMN updated_at,
    DROP COLUMN suspended_by,
    DROP COLUMN suspended_at,
    DROP COLUMN display_name;
