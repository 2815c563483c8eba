-- +goose Up
-- The payment module: a ledger of payments and refunds, in schema payments,
-- owned by role modshop_payments. Provider calls never run inside a
-- transaction: a row is recorded 'pending', claimed as 'processing' in a
-- short transaction, sent to the provider, and settled in another.

-- At most one payment per order, however often the request is delivered.
CREATE TABLE payments (
    id                     uuid PRIMARY KEY,
    order_id               uuid          NOT NULL UNIQUE,
    user_id                uuid          NOT NULL,
    amount                 numeric(10,2) NOT NULL CHECK (amount > 0),
    method                 varchar(100)  NOT NULL,
    status                 varchar(10)   NOT NULL CHECK (status IN ('pending', 'processing', 'captured', 'failed')),
    -- The order request's idempotency key; it goes on the outcome events.
    -- The provider gets the payment id as its key (one per order).
    idempotency_key        text          NOT NULL,
    provider_authorization varchar(100),
    provider_capture       varchar(100),
    attempts               integer       NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Set once a capture may have reached the provider (an attempt that
    -- failed after authorizing, or a claim that was taken over after a
    -- crash). Such a payment is never reported failed: the money may be
    -- taken, so it is retried until the provider gives a definite answer.
    capture_attempted      boolean       NOT NULL DEFAULT false,
    failure_reason         varchar(40),
    last_error             varchar(500),
    next_attempt_at        timestamptz   NOT NULL DEFAULT now(),
    claimed_at             timestamptz,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    updated_at             timestamptz   NOT NULL DEFAULT now(),
    captured_at            timestamptz,
    failed_at              timestamptz,
    CONSTRAINT payments_captured_has_capture CHECK ((status = 'captured') = (provider_capture IS NOT NULL AND captured_at IS NOT NULL)),
    CONSTRAINT payments_failed_has_reason CHECK ((status = 'failed') = (failure_reason IS NOT NULL AND failed_at IS NOT NULL)),
    CONSTRAINT payments_processing_is_claimed CHECK (status <> 'processing' OR claimed_at IS NOT NULL)
);
CREATE INDEX payments_due_idx ON payments (next_attempt_at) WHERE status IN ('pending', 'processing');
CREATE INDEX payments_user_idx ON payments (user_id);

-- Refunds are full refunds of a captured payment: at most one that has
-- not failed per payment.
CREATE TABLE refunds (
    id              uuid PRIMARY KEY,
    payment_id      uuid          NOT NULL REFERENCES payments (id),
    amount          numeric(10,2) NOT NULL CHECK (amount > 0),
    reason          varchar(200)  NOT NULL DEFAULT '',
    status          varchar(10)   NOT NULL CHECK (status IN ('pending', 'processing', 'succeeded', 'failed')),
    idempotency_key text          NOT NULL,
    provider_refund varchar(100),
    attempts        integer       NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    failure_reason  varchar(40),
    last_error      varchar(500),
    next_attempt_at timestamptz   NOT NULL DEFAULT now(),
    claimed_at      timestamptz,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    refunded_at     timestamptz,
    failed_at       timestamptz,
    CONSTRAINT refunds_succeeded_has_refund CHECK ((status = 'succeeded') = (provider_refund IS NOT NULL AND refunded_at IS NOT NULL)),
    CONSTRAINT refunds_failed_has_reason CHECK ((status = 'failed') = (failure_reason IS NOT NULL AND failed_at IS NOT NULL)),
    CONSTRAINT refunds_processing_is_claimed CHECK (status <> 'processing' OR claimed_at IS NOT NULL)
);
CREATE UNIQUE INDEX refunds_one_per_payment ON refunds (payment_id) WHERE status <> 'failed';
CREATE INDEX refunds_due_idx ON refunds (next_attempt_at) WHERE status IN ('pending', 'processing');

-- The built-in test-mode provider's own books, as a real provider keeps
-- them on its side: one row per operation and idempotency key, so a retry
-- with the same key (also after a restart) is answered from here instead of
-- charging again. Nothing else reads or writes this table.
CREATE TABLE test_provider_operations (
    kind            varchar(10)   NOT NULL CHECK (kind IN ('authorize', 'capture', 'refund')),
    idempotency_key varchar(100)  NOT NULL,
    ref             varchar(100)  NOT NULL UNIQUE,
    outcome         varchar(20)   NOT NULL,
    method          varchar(100)  NOT NULL DEFAULT '',
    amount          numeric(10,2) NOT NULL,
    target          varchar(100)  NOT NULL DEFAULT '', -- the authorization captured, the capture refunded
    created_at      timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, idempotency_key)
);
-- An authorization is captured once and a capture refunded once, whatever the key.
CREATE UNIQUE INDEX test_provider_one_capture ON test_provider_operations (target) WHERE kind = 'capture';
CREATE UNIQUE INDEX test_provider_one_refund ON test_provider_operations (target) WHERE kind = 'refund';

-- +goose Down
DROP TABLE test_provider_operations;
DROP TABLE refunds;
DROP TABLE payments;
