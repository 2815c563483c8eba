-- +goose Up
-- On hand is bounded well inside integer range, so that restocks can never
-- overflow it; the API refuses a change past the bound with 409.
ALTER TABLE inventory ADD CONSTRAINT inventory_on_hand_bounded CHECK (on_hand <= 1000000000);

-- +goose Down
ALTER TABLE inventory DROP CONSTRAINT inventory_on_hand_bounded;
