-- Presence and the LiveKit event log (same shape as migrations/sqlite/0002).
ALTER TABLE sessions ADD COLUMN participant_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_activity_at BIGINT;

CREATE INDEX sessions_room_sid ON sessions (livekit_room_sid);
CREATE INDEX sessions_live_oldest ON sessions (created_at) WHERE status IN ('created', 'active');

CREATE TABLE session_participants (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    identity      TEXT    NOT NULL,
    present       BOOLEAN NOT NULL,
    last_event_at BIGINT  NOT NULL,
    PRIMARY KEY (session_id, identity)
);

CREATE TABLE webhook_events (
    id           TEXT   PRIMARY KEY NOT NULL,
    event        TEXT   NOT NULL,
    session_id   TEXT   REFERENCES sessions (id) ON DELETE SET NULL,
    room_name    TEXT,
    participant  TEXT,
    track_sid    TEXT,
    created_at   BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    payload      TEXT   NOT NULL
);
CREATE INDEX webhook_events_by_session ON webhook_events (session_id, created_at DESC, id DESC);
