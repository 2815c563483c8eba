-- +goose Up
-- A refund the payment provider refused (payment.refund_failed): failed,
-- with when and why. Its amount no longer counts as on its way back, and
-- the lines it named may be refunded again.
ALTER TABLE order_refunds DROP CONSTRAINT order_refunds_status_check,
    ADD CONSTRAINT order_refunds_status_check CHECK (status IN ('requested', 'succeeded', 'failed')),
    ADD COLUMN failed_at timestamptz,
    ADD COLUMN failure_reason varchar(200),
    ADD CONSTRAINT order_refunds_failed_at CHECK ((status = 'failed') = (failed_at IS NOT NULL));

-- +goose Down
DELETE FROM order_refunds WHERE status = 'failed';
ALTER TABLE order_refunds DROP CONSTRAINT order_refunds_failed_at,
    DROP COLUMN failure_reason,
    DROP COLUMN failed_at,
    DROP CONSTRAINT order_refunds_status_check,
    ADD CONSTRAINT order_refunds_status_check CHECK (status IN ('requested', 'succeeded'));
