-- +goose Up
-- The trace context (a W3C traceparent) of the handler that recorded a
-- payment or refund, so that the worker's job for the row, picked up
-- later and perhaps by another replica, continues the order's trace.
-- NULL when the handler ran outside any trace (tracing off, rows from
-- before this migration).
ALTER TABLE payments ADD COLUMN traceparent text CHECK (length(traceparent) <= 100);
ALTER TABLE refunds ADD COLUMN traceparent text CHECK (length(traceparent) <= 100);

-- +goose Down
ALTER TABLE refunds DROP COLUMN traceparent;
ALTER TABLE payments DROP COLUMN traceparent;
