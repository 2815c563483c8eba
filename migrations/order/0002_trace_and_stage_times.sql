-- +goose Up
-- traceparent: the W3C trace context (telemetry.Traceparent) the order was
-- placed in, so that staff can open its trace and the deadline sweep can
-- link its own trace to it; NULL for an order placed untraced, and for the
-- orders placed before this migration.
-- payment_requested_at: when the order asked for its payment (the commit of
-- stock.reserved's handling, which publishes payment.requested): the start
-- of the saga stage payment_requested_to_paid; NULL until then, and for the
-- orders that asked before this migration.
ALTER TABLE orders
    ADD COLUMN traceparent          text CHECK (length(traceparent) <= 256),
    ADD COLUMN payment_requested_at timestamptz;

-- +goose Down
ALTER TABLE orders DROP COLUMN payment_requested_at, DROP COLUMN traceparent;
