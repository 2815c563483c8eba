-- +goose Up
-- Copies the order module keeps of other modules' data, from their events
-- (docs/adr/0031-copies-are-backfilled-on-request.md). version is the
-- updated_at of the event the row came from: an event or a backfill page
-- older than the row changes nothing, so events may come late and twice.

-- From product.created, product.updated and product.backfilled: names for
-- the lines of new orders, prices for the check at placement.
CREATE TABLE product_copies (
    id      uuid          PRIMARY KEY,
    name    varchar(120)  NOT NULL,
    price   numeric(10,2) NOT NULL,
    active  boolean       NOT NULL,
    version timestamptz   NOT NULL
);

-- From user.registered, user.updated and user.backfilled: who ordered, as
-- staff read it. No e-mail address: staff open the account for that.
CREATE TABLE customer_copies (
    id           uuid         PRIMARY KEY,
    username     varchar(50)  NOT NULL,
    display_name varchar(100) NOT NULL DEFAULT '',
    version      timestamptz  NOT NULL
);

-- One row per copy: the backfill it asked for (request_id, requested_at)
-- and when that backfill's last page came (filled_at; NULL: not yet, so
-- the module asks again).
CREATE TABLE copy_backfills (
    copy         varchar(20) PRIMARY KEY CHECK (copy IN ('products', 'customers')),
    request_id   uuid,
    requested_at timestamptz,
    filled_at    timestamptz
);
INSERT INTO copy_backfills (copy) VALUES ('products'), ('customers');

-- Lines still without a name: a product not yet in the copy when the order
-- was placed. When the copy catches up it names them through this index.
CREATE INDEX order_items_unnamed_idx ON order_items (product_id) WHERE name IS NULL;

-- +goose Down
DROP INDEX order_items_unnamed_idx;
DROP TABLE copy_backfills;
DROP TABLE customer_copies;
DROP TABLE product_copies;
