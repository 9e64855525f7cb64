-- Turn records (design.md §8.3; same shape as migrations/sqlite/0008). `turn_count`
-- numbers a session's turns, voice and chat alike; a final transcript bumps it in the same
-- UPDATE that bumps `turn_generation`, so the voice path pays no extra round trip.
-- `turn_bumped_by` says what bumped the generation last ('final' or 'voice_onset'), so an
-- interrupted turn knows what stopped it.
ALTER TABLE sessions ADD COLUMN turn_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN turn_bumped_by TEXT NOT NULL DEFAULT 'final';

-- One row per finished turn: the record as JSON, plus the columns lists and the session
-- summary read (the first-TTS latency and the tokens).
CREATE TABLE turns (
    session_id        TEXT   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn              BIGINT NOT NULL,
    first_tts_request BIGINT,
    total_tokens      BIGINT NOT NULL DEFAULT 0,
    record            TEXT   NOT NULL,
    PRIMARY KEY (session_id, turn)
);
