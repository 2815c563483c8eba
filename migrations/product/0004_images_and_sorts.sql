-- +goose Up
-- Product images live in the database, not on a process's disk: replicas
-- and split processes share no disk (ADR 0035). An image is immutable; its
-- id names its bytes for caches. alt NULL means "the product's name".
CREATE TABLE product_images (
    id           uuid PRIMARY KEY,
    product_id   uuid        NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position     integer     NOT NULL CHECK (position >= 0),
    content_type varchar(20) NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
    width        integer     NOT NULL CHECK (width BETWEEN 1 AND 10000),
    height       integer     NOT NULL CHECK (height BETWEEN 1 AND 10000),
    alt          varchar(200),
    data         bytea       NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT product_images_position_unique UNIQUE (product_id, position) DEFERRABLE INITIALLY DEFERRED
);

-- Keyset orders of the catalog besides (name, id): by price either way
-- and newest first; each index serves its ORDER BY and its cursor.
CREATE INDEX products_price_idx ON products (price, id);
CREATE INDEX products_price_desc_idx ON products (price DESC, id);
CREATE INDEX products_created_idx ON products (created_at DESC, id DESC);

-- +goose Down
DROP INDEX products_created_idx;
DROP INDEX products_price_desc_idx;
DROP INDEX products_price_idx;
DROP TABLE product_images;
