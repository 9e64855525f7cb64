-- What LiveKit's webhooks tell us: who is in each session's room, and the event log that is
-- also the dedupe memory of webhook ids.
ALTER TABLE sessions ADD COLUMN participant_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_activity_at INTEGER;

CREATE INDEX sessions_room_sid ON sessions (livekit_room_sid);
CREATE INDEX sessions_live_oldest ON sessions (created_at) WHERE status IN ('created', 'active');

-- One row per (session, identity): the latest news by LiveKit's clock wins.
CREATE TABLE session_participants (
    session_id    TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    identity      TEXT    NOT NULL,
    present       INTEGER NOT NULL,
    last_event_at INTEGER NOT NULL,
    PRIMARY KEY (session_id, identity)
);

CREATE TABLE webhook_events (
    id           TEXT    PRIMARY KEY NOT NULL,
    event        TEXT    NOT NULL,
    session_id   TEXT    REFERENCES sessions (id) ON DELETE SET NULL,
    room_name    TEXT,
    participant  TEXT,
    track_sid    TEXT,
    created_at   INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    payload      TEXT    NOT NULL
);
CREATE INDEX webhook_events_by_session ON webhook_events (session_id, created_at DESC, id DESC);
