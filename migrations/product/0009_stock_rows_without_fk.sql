-- +goose Up
-- A reservation's lines are written in the statement that writes the
-- reservation, and a sale's movements in the statement that sells from
-- the inventory row of their product; neither reservations nor products
-- are ever deleted. The foreign keys cost a statement per line (the RI
-- check), four per confirmed order. They go; the invariant checker
-- (app/apptest/invariants.go) checks after every end-to-end test,
-- benchmark and chaos fault that no reservation line is without its
-- reservation and no movement without its product (ADR 0039).
ALTER TABLE reservation_lines DROP CONSTRAINT reservation_lines_order_id_fkey;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_product_id_fkey;

-- +goose Down
ALTER TABLE reservation_lines ADD CONSTRAINT reservation_lines_order_id_fkey
    FOREIGN KEY (order_id) REFERENCES reservations (order_id) ON DELETE CASCADE;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_product_id_fkey
    FOREIGN KEY (product_id) REFERENCES products (id) ON DELETE CASCADE;
