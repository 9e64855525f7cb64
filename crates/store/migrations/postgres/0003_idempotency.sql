-- Idempotency-Key of POST /api/sessions (same shape as migrations/sqlite/0003).
CREATE TABLE idempotency_keys (
    key         TEXT   PRIMARY KEY NOT NULL,
    fingerprint TEXT   NOT NULL,
    response    TEXT,
    created_at  BIGINT NOT NULL
);
