-- Sessions and their conversation history.
-- Times are Unix microseconds (INTEGER): they sort and compare exactly, unlike text dates.
CREATE TABLE sessions (
    id               TEXT    PRIMARY KEY NOT NULL,
    user_id          TEXT    NOT NULL,
    room_name        TEXT    NOT NULL,
    livekit_room_sid TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('created', 'active', 'ended', 'expired')),
    language         TEXT    NOT NULL,
    metadata         TEXT    NOT NULL DEFAULT '{}',
    voice            INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    ended_at         INTEGER
);

-- A room name belongs to at most one live session; ended ones may share it.
CREATE UNIQUE INDEX sessions_live_room ON sessions (room_name) WHERE status IN ('created', 'active');
CREATE INDEX sessions_newest ON sessions (created_at DESC, id DESC);
CREATE INDEX sessions_user_newest ON sessions (user_id, created_at DESC, id DESC);

CREATE TABLE history (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX history_by_session ON history (session_id, seq);
