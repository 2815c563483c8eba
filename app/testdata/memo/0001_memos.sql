-- +goose Up
-- The memo module of app/dummy_module_test.go: what its handler records.
CREATE TABLE memos (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    text       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE memos;
