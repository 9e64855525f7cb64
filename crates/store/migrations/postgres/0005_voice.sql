-- The voice loop: one-time bot dispatch, the turn generation that cancels running turns on
-- every replica, and the last final transcript (STT bots resend them).
ALTER TABLE sessions ADD COLUMN dispatched_at BIGINT;
ALTER TABLE sessions ADD COLUMN turn_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_final_text TEXT;
ALTER TABLE sessions ADD COLUMN last_final_at BIGINT;
