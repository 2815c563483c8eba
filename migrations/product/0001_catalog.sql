-- +goose Up
-- The product module: catalog, inventory and stock reservations, in schema
-- products, owned by role modshop_products.

CREATE TABLE categories (
    id         uuid PRIMARY KEY,
    slug       varchar(60)  NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
    name       varchar(80)  NOT NULL,
    parent_id  uuid REFERENCES categories (id),
    created_at timestamptz  NOT NULL DEFAULT now()
);

CREATE TABLE products (
    id          uuid PRIMARY KEY,
    sku         varchar(32)   NOT NULL UNIQUE CHECK (sku ~ '^[A-Z0-9][A-Z0-9-]*$'),
    name        varchar(120)  NOT NULL,
    description text          NOT NULL DEFAULT '' CHECK (length(description) <= 4000),
    price       numeric(10,2) NOT NULL CHECK (price > 0),
    active      boolean       NOT NULL DEFAULT true,
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    search      tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', name), 'A') ||
                    setweight(to_tsvector('simple', sku), 'A') ||
                    setweight(to_tsvector('english', description), 'B')) STORED
);
CREATE INDEX products_search_idx ON products USING gin (search);
CREATE INDEX products_name_idx ON products (name, id);

CREATE TABLE product_categories (
    product_id  uuid NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    category_id uuid NOT NULL REFERENCES categories (id),
    PRIMARY KEY (product_id, category_id)
);
CREATE INDEX product_categories_category_idx ON product_categories (category_id);

-- Stock: available = on_hand - reserved, never negative, by constraint as
-- well as by code.
CREATE TABLE inventory (
    product_id uuid PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    on_hand    integer NOT NULL CHECK (on_hand >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    CONSTRAINT inventory_available_not_negative CHECK (on_hand >= reserved)
);

-- Every change of on_hand, so that on hand = initial + restocks - sold can be checked.
CREATE TABLE stock_movements (
    id         bigserial PRIMARY KEY,
    product_id uuid        NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    kind       varchar(12) NOT NULL CHECK (kind IN ('initial', 'restock', 'correction', 'sale')),
    delta      integer     NOT NULL,
    order_id   uuid,
    reason     varchar(200) NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stock_movements_product_idx ON stock_movements (product_id);

-- One reservation per order. 'rejected' and 'released' rows are kept as
-- tombstones, so a late or repeated order.placed cannot reserve again.
CREATE TABLE reservations (
    order_id    uuid PRIMARY KEY,
    state       varchar(10) NOT NULL CHECK (state IN ('active', 'committed', 'released', 'rejected')),
    reason      varchar(200) NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX reservations_active_expiry_idx ON reservations (expires_at) WHERE state = 'active';

CREATE TABLE reservation_lines (
    order_id   uuid          NOT NULL REFERENCES reservations (order_id) ON DELETE CASCADE,
    product_id uuid          NOT NULL,
    name       varchar(120)  NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    quantity   integer       NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

-- +goose Down
DROP TABLE reservation_lines;
DROP TABLE reservations;
DROP TABLE stock_movements;
DROP TABLE inventory;
DROP TABLE product_categories;
DROP TABLE products;
DROP TABLE categories;
