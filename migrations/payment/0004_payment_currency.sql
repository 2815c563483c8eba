-- +goose Up
-- The currency of a payment's amount, as payment.requested gave it; its
-- refunds are in it too. NULL for the payments recorded before this
-- migration (and for requests that carried none), which are read as in the
-- shop's currency (MODSHOP_CURRENCY).
ALTER TABLE payments ADD COLUMN currency char(3) CHECK (currency ~ '^[A-Z]{3}$');

-- +goose Down
ALTER TABLE payments DROP COLUMN currency;
