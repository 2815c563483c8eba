-- +goose Up
-- Goods that came back (order.returned) go back on hand as a movement of
-- their own kind, 'return', naming the return they belong to: one per
-- return and product, however often the message is delivered.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
    CHECK (kind IN ('initial', 'restock', 'correction', 'sale', 'return'));
ALTER TABLE stock_movements ADD COLUMN return_id uuid;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_return_has_id CHECK ((kind = 'return') = (return_id IS NOT NULL));
CREATE UNIQUE INDEX stock_movements_one_per_return ON stock_movements (return_id, product_id) WHERE kind = 'return';

-- +goose Down
DROP INDEX stock_movements_one_per_return;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_return_has_id;
DELETE FROM stock_movements WHERE kind = 'return';
ALTER TABLE stock_movements DROP COLUMN return_id;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_kind_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_kind_check
    CHECK (kind IN ('initial', 'restock', 'correction', 'sale'));
