-- Idempotency-Key of POST /api/sessions: the first request's response, for 24 h.
CREATE TABLE idempotency_keys (
    key         TEXT    PRIMARY KEY NOT NULL,
    fingerprint TEXT    NOT NULL,
    -- NULL while the first request is still being handled.
    response    TEXT,
    created_at  INTEGER NOT NULL
);
