-- Sessions and their conversation history (same shape as migrations/sqlite/0001).
-- Times are Unix microseconds (BIGINT), ids and JSON are TEXT: one set of queries serves both
-- backends.
CREATE TABLE sessions (
    id               TEXT    PRIMARY KEY NOT NULL,
    user_id          TEXT    NOT NULL,
    room_name        TEXT    NOT NULL,
    livekit_room_sid TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('created', 'active', 'ended', 'expired')),
    language         TEXT    NOT NULL,
    metadata         TEXT    NOT NULL DEFAULT '{}',
    voice            BOOLEAN NOT NULL DEFAULT FALSE,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    ended_at         BIGINT
);

CREATE UNIQUE INDEX sessions_live_room ON sessions (room_name) WHERE status IN ('created', 'active');
CREATE INDEX sessions_newest ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_user_newest ON sessions (user_id, created_at DESC, id DESC);

CREATE TABLE history (
    seq        BIGSERIAL PRIMARY KEY,
    session_id TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content    TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX history_by_session ON history (session_id, seq);
