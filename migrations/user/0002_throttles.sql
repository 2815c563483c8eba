-- +goose Up
-- The log-in and registration throttles, shared by every process of the
-- user module. One token bucket per key ("login-client:192.0.2.1"), kept
-- as the time it will be full again (full_at); a row whose full_at has
-- passed holds no information and is pruned. granted and touched_at are
-- the last attempt's outcome and time, which the statement that spends an
-- attempt returns.
--
-- UNLOGGED: throttle state is not worth a write-ahead log record per
-- log-in; after a crash the table starts empty (every bucket full), which
-- is what a fresh start means anyway. No index but the key: rows change at
-- every attempt, and a small table is cheaper to scan when pruning than an
-- index is to keep up.
CREATE UNLOGGED TABLE throttle_buckets (
    key        text        PRIMARY KEY,
    full_at    timestamptz NOT NULL,
    granted    boolean     NOT NULL,
    touched_at timestamptz NOT NULL,
    CONSTRAINT throttle_buckets_key_length CHECK (octet_length(key) <= 200)
) WITH (fillfactor = 70);

-- +goose Down
DROP TABLE throttle_buckets;
