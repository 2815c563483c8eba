-- +goose Up
-- An order's lines and timeline entries are written only by the order
-- module, in the same statement or transaction that writes or locks their
-- order, and orders are never deleted. The foreign keys to orders cost a
-- statement per row written (PostgreSQL's RI check, also on an update of a
-- row the same transaction inserted): about nine per confirmed order.
-- They go; the invariant checker (app/apptest/invariants.go) checks after
-- every end-to-end test, benchmark and chaos fault that no line or
-- timeline entry is without its order (ADR 0039).
ALTER TABLE order_items DROP CONSTRAINT order_items_order_id_fkey;
ALTER TABLE order_timeline DROP CONSTRAINT order_timeline_order_id_fkey;

-- +goose Down
ALTER TABLE order_items ADD CONSTRAINT order_items_order_id_fkey
    FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE;
ALTER TABLE order_timeline ADD CONSTRAINT order_timeline_order_id_fkey
    FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE;
