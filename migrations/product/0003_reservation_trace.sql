-- +goose Up
-- The trace context (a W3C traceparent) of the handler that reserved the
-- stock, so that the expiry sweep that releases it later can link its own
-- trace to the order's. NULL when the reservation was made outside any
-- trace (tracing off, rows from before this migration).
ALTER TABLE reservations ADD COLUMN traceparent text CHECK (length(traceparent) <= 100);

-- +goose Down
ALTER TABLE reservations DROP COLUMN traceparent;
