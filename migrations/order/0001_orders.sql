-- +goose Up
-- The order module: orders, their lines, the saga's state and each order's
-- timeline, in schema orders, owned by role modshop_orders. user_id and
-- product_id are plain ids: no foreign keys across schemas.

CREATE TABLE orders (
    id              uuid PRIMARY KEY,
    user_id         uuid          NOT NULL,
    status          varchar(20)   NOT NULL CHECK (status IN ('pending', 'awaiting_payment', 'confirmed', 'rejected', 'cancelled')),
    total_amount    numeric(10,2) CHECK (total_amount > 0),
    payment_method  varchar(40)   NOT NULL,
    payment_state   varchar(20)   NOT NULL DEFAULT 'none'
                    CHECK (payment_state IN ('none', 'requested', 'captured', 'failed', 'refund_requested', 'refunded')),
    idempotency_key varchar(100),
    cancel_reason   varchar(60)   NOT NULL DEFAULT '',
    deadline_at     timestamptz,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status_idx ON orders (status, created_at DESC, id DESC);
CREATE INDEX orders_created_idx ON orders (created_at DESC, id DESC);
CREATE INDEX orders_deadline_idx ON orders (deadline_at) WHERE status IN ('pending', 'awaiting_payment');

-- Lines as ordered; name and unit price are copied from stock.reserved, the
-- authoritative prices at the time of purchase.
CREATE TABLE order_items (
    order_id   uuid    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id uuid    NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    name       varchar(120),
    unit_price numeric(10,2) CHECK (unit_price > 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE order_timeline (
    id         bigserial PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    step       varchar(40) NOT NULL,
    message_id varchar(36),
    detail     text        NOT NULL DEFAULT ''
);
CREATE INDEX order_timeline_order_idx ON order_timeline (order_id, id);

-- Idempotency keys of POST /api/v1/orders, per user.
CREATE TABLE idempotency_keys (
    user_id      uuid         NOT NULL,
    key          varchar(100) NOT NULL,
    request_hash bytea        NOT NULL,
    order_id     uuid         NOT NULL,
    created_at   timestamptz  NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE order_timeline;
DROP TABLE order_items;
DROP TABLE orders;
