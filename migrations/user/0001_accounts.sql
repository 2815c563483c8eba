-- +goose Up
-- Accounts, roles and sessions of the user module. Everything here lives in
-- the users schema, owned by role modshop_users; no other module reads it.

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      varchar(50)  NOT NULL,
    email         varchar(100) NOT NULL,
    password_hash varchar(255) NOT NULL,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9_.-]{3,50}$'),
    CONSTRAINT users_email_lower CHECK (email = lower(email))
);
-- Case-insensitive uniqueness: "Alice" and "alice" are one account.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_created_at_idx ON users (created_at, id);

CREATE TABLE roles (
    name        varchar(30) PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE permissions (
    name        varchar(50) PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE role_permissions (
    role       varchar(30) NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission varchar(50) NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE user_roles (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role       varchar(30) NOT NULL REFERENCES roles (name),
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role)
);

-- A session token is never stored: only its SHA-256.
CREATE TABLE sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    user_agent  varchar(200) NOT NULL DEFAULT '',
    client_addr varchar(64)  NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

INSERT INTO roles (name, description) VALUES
    ('customer', 'Shops: browses, orders, follows and cancels own orders.'),
    ('admin',    'Staff: manages users, catalog, stock, every order and the bus.');

INSERT INTO permissions (name, description) VALUES
    ('orders.own',     'Place, list and cancel own orders'),
    ('users.manage',   'List users and set their roles'),
    ('catalog.manage', 'Create and change products, categories and stock'),
    ('orders.all',     'See every order and its saga'),
    ('bus.manage',     'Inspect the bus, replay and discard dead letters');

INSERT INTO role_permissions (role, permission) VALUES
    ('customer', 'orders.own'),
    ('admin', 'users.manage'),
    ('admin', 'catalog.manage'),
    ('admin', 'orders.all'),
    ('admin', 'bus.manage');

-- +goose Down
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE role_permissions;
DROP TABLE permissions;
DROP TABLE roles;
DROP TABLE users;
