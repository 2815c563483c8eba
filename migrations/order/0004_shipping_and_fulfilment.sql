-- +goose Up
-- Shipping and fulfilment (ADR 0032). The method, its label and its price
-- are copied at placement: a later change of MODSHOP_SHIPPING_METHODS does
-- not change what an order was placed with. Orders placed before this
-- migration were collected in store (pickup, 0.00, no address).
-- The address is NULL for pickup and whole otherwise (name, line1, city
-- and country; line2 and postal_code may be empty).
-- subtotal_amount is the sum of the priced lines; total_amount is it plus
-- shipping_price, what the payment charges.
-- fulfilment_state moves beside the status: unfulfilled, shipped (carrier
-- and tracking number), delivered.
ALTER TABLE orders
    ADD COLUMN shipping_method  varchar(20)   NOT NULL DEFAULT 'pickup',
    ADD COLUMN shipping_label   varchar(40)   NOT NULL DEFAULT 'Collect in store',
    ADD COLUMN shipping_price   numeric(10,2) NOT NULL DEFAULT 0 CHECK (shipping_price >= 0),
    ADD COLUMN ship_name        varchar(100),
    ADD COLUMN ship_line1       varchar(100),
    ADD COLUMN ship_line2       varchar(100),
    ADD COLUMN ship_postal_code varchar(16),
    ADD COLUMN ship_city        varchar(60),
    ADD COLUMN ship_country     char(2),
    ADD COLUMN subtotal_amount  numeric(10,2),
    ADD COLUMN fulfilment_state varchar(20)   NOT NULL DEFAULT 'unfulfilled'
                                CHECK (fulfilment_state IN ('unfulfilled', 'shipped', 'delivered')),
    ADD COLUMN carrier          varchar(60),
    ADD COLUMN tracking_number  varchar(60),
    ADD COLUMN shipped_at       timestamptz,
    ADD COLUMN delivered_at     timestamptz,
    ADD CONSTRAINT orders_address_whole CHECK (
        (ship_name IS NULL AND ship_line1 IS NULL AND ship_line2 IS NULL AND ship_postal_code IS NULL
            AND ship_city IS NULL AND ship_country IS NULL)
        OR (ship_name IS NOT NULL AND ship_line1 IS NOT NULL AND ship_line2 IS NOT NULL AND ship_postal_code IS NOT NULL
            AND ship_city IS NOT NULL AND ship_country IS NOT NULL)),
    ADD CONSTRAINT orders_shipped_with_tracking CHECK (
        fulfilment_state = 'unfulfilled' OR shipping_method = 'pickup'
        OR (carrier IS NOT NULL AND tracking_number IS NOT NULL AND shipped_at IS NOT NULL)),
    ADD CONSTRAINT orders_fulfilled_when_confirmed CHECK (fulfilment_state = 'unfulfilled' OR status = 'confirmed');

UPDATE orders SET subtotal_amount = total_amount WHERE total_amount IS NOT NULL;

-- What staff ship next: confirmed, unfulfilled orders, oldest first.
CREATE INDEX orders_to_ship_idx ON orders (created_at, id) WHERE status = 'confirmed' AND fulfilment_state = 'unfulfilled';

-- +goose Down
DROP INDEX orders_to_ship_idx;
ALTER TABLE orders
    DROP CONSTRAINT orders_fulfilled_when_confirmed,
    DROP CONSTRAINT orders_shipped_with_tracking,
    DROP CONSTRAINT orders_address_whole,
    DROP COLUMN delivered_at, DROP COLUMN shipped_at, DROP COLUMN tracking_number, DROP COLUMN carrier,
    DROP COLUMN fulfilment_state, DROP COLUMN subtotal_amount,
    DROP COLUMN ship_country, DROP COLUMN ship_city, DROP COLUMN ship_postal_code, DROP COLUMN ship_line2,
    DROP COLUMN ship_line1, DROP COLUMN ship_name,
    DROP COLUMN shipping_price, DROP COLUMN shipping_label, DROP COLUMN shipping_method;
