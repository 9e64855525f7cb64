-- Room adoption (voice.adopt_rooms): 'owned' sessions were created by POST /api/sessions and
-- own their LiveKit room; 'room' sessions were adopted for a room LiveKit already had.
ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'owned' CHECK (kind IN ('owned', 'room'));
