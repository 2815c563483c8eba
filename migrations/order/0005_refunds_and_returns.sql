-- +goose Up
-- Refunds and returns of confirmed orders, asked for by staff.
-- refunded_amount is what the payment module reported refunded
-- (payment.refunded); an order's refund_state is read from it and the
-- total. Each line keeps how much of it was refunded by line and how much
-- came back, the bounds of later requests.
ALTER TABLE orders ADD COLUMN refunded_amount numeric(10,2) NOT NULL DEFAULT 0,
    ADD CONSTRAINT orders_refunded_within_total CHECK (refunded_amount >= 0 AND refunded_amount <= coalesce(total_amount, 0));
ALTER TABLE order_items
    ADD COLUMN refunded_quantity integer NOT NULL DEFAULT 0 CHECK (refunded_quantity >= 0 AND refunded_quantity <= quantity),
    ADD COLUMN returned_quantity integer NOT NULL DEFAULT 0 CHECK (returned_quantity >= 0 AND returned_quantity <= quantity);

-- A refund the order asked for (payment.refund_requested; its id is the
-- payment module's refund id) or heard of (the refund of a charge that
-- came after the order ended). idempotency_key and request_hash: the
-- staff request's, one refund per order and key.
CREATE TABLE order_refunds (
    id              uuid PRIMARY KEY,
    order_id        uuid          NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    amount          numeric(10,2) NOT NULL CHECK (amount > 0),
    reason          varchar(200)  NOT NULL DEFAULT '',
    status          varchar(10)   NOT NULL CHECK (status IN ('requested', 'succeeded')),
    idempotency_key varchar(100),
    request_hash    bytea,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    refunded_at     timestamptz,
    CONSTRAINT order_refunds_succeeded_at CHECK ((status = 'succeeded') = (refunded_at IS NOT NULL)),
    UNIQUE (order_id, idempotency_key)
);
CREATE INDEX order_refunds_order_idx ON order_refunds (order_id, created_at, id);

CREATE TABLE order_refund_lines (
    refund_id  uuid    NOT NULL REFERENCES order_refunds (id) ON DELETE CASCADE,
    product_id uuid    NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (refund_id, product_id)
);

-- Goods that came back (order.returned), one per order and key.
CREATE TABLE order_returns (
    id              uuid PRIMARY KEY,
    order_id        uuid         NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    idempotency_key varchar(100),
    request_hash    bytea,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (order_id, idempotency_key)
);

CREATE TABLE order_return_lines (
    return_id  uuid    NOT NULL REFERENCES order_returns (id) ON DELETE CASCADE,
    product_id uuid    NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (return_id, product_id)
);

-- +goose Down
DROP TABLE order_return_lines;
DROP TABLE order_returns;
DROP TABLE order_refund_lines;
DROP TABLE order_refunds;
ALTER TABLE order_items DROP COLUMN returned_quantity, DROP COLUMN refunded_quantity;
ALTER TABLE orders DROP COLUMN refunded_amount;
