-- +goose Up
-- The catalog at a million products (ADR 0037).
--
-- Relevance is tiered: products whose name or SKU holds the whole search
-- come first, then those that match only through their description; each
-- tier in (name, id) order, which products_name_idx serves with a keyset
-- cursor. name_search is the name-and-SKU half of search, so that the first
-- tier has an index (and statistics) of its own.
ALTER TABLE products ADD COLUMN name_search tsvector GENERATED ALWAYS AS (
    to_tsvector('english', name) || to_tsvector('simple', sku)) STORED;
CREATE INDEX products_name_search_idx ON products USING gin (name_search);
-- The name order carries what a listing filters on, so that walking it
-- (browsing, and the first tier of a common word) reads no table rows:
-- an index-only scan, where the visibility map allows. name_search is
-- bounded by name (120) and SKU (32), far inside an index row.
DROP INDEX products_name_idx;
CREATE INDEX products_name_idx ON products (name, id) INCLUDE (active, name_search);

-- Every category with each category at or above it (itself included): a
-- category page reads the products filed anywhere below the category by
-- one indexed join instead of walking the tree per product. Categories
-- are only ever added (never moved or removed), and the store adds a new
-- category's rows in the transaction that inserts it.
CREATE TABLE category_closure (
    ancestor_id   uuid    NOT NULL REFERENCES categories (id),
    descendant_id uuid    NOT NULL REFERENCES categories (id),
    depth         integer NOT NULL CHECK (depth >= 0),
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX category_closure_descendant_idx ON category_closure (descendant_id);

INSERT INTO category_closure (ancestor_id, descendant_id, depth)
WITH RECURSIVE up AS (
    SELECT id AS descendant_id, id AS ancestor_id, parent_id, 0 AS depth FROM categories
    UNION ALL
    SELECT up.descendant_id, c.id, c.parent_id, up.depth + 1
      FROM up JOIN categories c ON c.id = up.parent_id)
SELECT ancestor_id, descendant_id, depth FROM up;

-- A category page, by name: every product under each category at or above
-- the ones it is filed under, in (name, id) order, so that a page of any
-- category is one range of category_listing_name_idx whatever the
-- category's size. Kept by the triggers below in the transaction of every
-- write of product_categories and of a product's name or active flag, so
-- that no write path (the store's, a bulk SQL load) can forget it.
CREATE TABLE category_listing (
    category_id uuid         NOT NULL REFERENCES categories (id),
    product_id  uuid         NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    name        varchar(120) NOT NULL,
    active      boolean      NOT NULL,
    PRIMARY KEY (category_id, product_id)
);
CREATE INDEX category_listing_name_idx ON category_listing (category_id, name, product_id) INCLUDE (active);
CREATE INDEX category_listing_product_idx ON category_listing (product_id);

-- +goose StatementBegin
CREATE FUNCTION category_listing_filed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO category_listing (category_id, product_id, name, active)
    SELECT DISTINCT cc.ancestor_id, p.id, p.name, p.active
      FROM added a
      JOIN category_closure cc ON cc.descendant_id = a.category_id
      JOIN products p ON p.id = a.product_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION category_listing_unfiled() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    -- A row goes when none of the categories the product is still filed
    -- under is at or below it.
    DELETE FROM category_listing l
     USING (SELECT DISTINCT product_id FROM removed) r
     WHERE l.product_id = r.product_id
       AND NOT EXISTS (SELECT 1 FROM product_categories pc
                         JOIN category_closure cc ON cc.descendant_id = pc.category_id
                        WHERE pc.product_id = l.product_id AND cc.ancestor_id = l.category_id);
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION category_listing_renamed() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE category_listing l SET name = n.name, active = n.active
      FROM changed n
     WHERE l.product_id = n.id AND (l.name, l.active) IS DISTINCT FROM (n.name, n.active);
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER category_listing_filed AFTER INSERT ON product_categories
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION category_listing_filed();
CREATE TRIGGER category_listing_unfiled AFTER DELETE ON product_categories
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION category_listing_unfiled();
CREATE TRIGGER category_listing_renamed AFTER UPDATE ON products
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION category_listing_renamed();

INSERT INTO category_listing (category_id, product_id, name, active)
SELECT DISTINCT cc.ancestor_id, p.id, p.name, p.active
  FROM product_categories pc
  JOIN category_closure cc ON cc.descendant_id = pc.category_id
  JOIN products p ON p.id = pc.product_id;

-- +goose Down
DROP INDEX products_name_idx;
CREATE INDEX products_name_idx ON products (name, id);
DROP TABLE category_listing;
DROP FUNCTION category_listing_filed();
DROP FUNCTION category_listing_unfiled();
DROP FUNCTION category_listing_renamed();
DROP TABLE category_closure;
DROP INDEX products_name_search_idx;
ALTER TABLE products DROP COLUMN name_search;
