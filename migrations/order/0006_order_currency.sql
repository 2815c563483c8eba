-- +goose Up
-- The currency of an order's amounts (its total, its lines' unit prices):
-- the shop's (MODSHOP_CURRENCY) when it was placed. NULL for the orders
-- placed before this migration, which are read as in the shop's currency.
ALTER TABLE orders ADD COLUMN currency char(3) CHECK (currency ~ '^[A-Z]{3}$');

-- +goose Down
ALTER TABLE orders DROP COLUMN currency;
