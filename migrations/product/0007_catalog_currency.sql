-- +goose Up
-- The currency the catalog's prices are in, recorded the first time the
-- module starts (catalog.Service.HoldCurrency): one row. A process started
-- with another MODSHOP_CURRENCY while products exist is refused, rather
-- than relabel every price; docs/operations.md says how to change it.
CREATE TABLE catalog_currency (
    one_row     boolean     PRIMARY KEY DEFAULT true CHECK (one_row),
    currency    char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE catalog_currency;
