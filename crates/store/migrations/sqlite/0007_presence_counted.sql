-- Presence kept incrementally: a session's participant_count and last_activity_at move by
-- the change of one participant row (joined +1, left -1, news that changes nothing 0)
-- instead of being recounted from all the room's rows on every webhook. The upsert's guard
-- (newer-or-equal news wins) decides which news changes a row, so duplicates and late news
-- reach no trigger with a change. Same shape as migrations/postgres/0007.
CREATE TRIGGER session_participants_inserted AFTER INSERT ON session_participants
BEGIN
    UPDATE sessions
       SET participant_count = participant_count + NEW.present,
           last_activity_at = MAX(COALESCE(last_activity_at, NEW.last_event_at), NEW.last_event_at)
     WHERE id = NEW.session_id;
END;

CREATE TRIGGER session_participants_updated AFTER UPDATE ON session_participants
WHEN NEW.present <> OLD.present OR NEW.last_event_at > OLD.last_event_at
BEGIN
    UPDATE sessions
       SET participant_count = participant_count + NEW.present - OLD.present,
           last_activity_at = MAX(COALESCE(last_activity_at, NEW.last_event_at), NEW.last_event_at)
     WHERE id = NEW.session_id;
END;

-- Backfill: recount once the sessions that have participants.
UPDATE sessions
   SET participant_count = (SELECT COUNT(*) FROM session_participants p
                            WHERE p.session_id = sessions.id AND p.present),
       last_activity_at = (SELECT MAX(p.last_event_at) FROM session_participants p
                           WHERE p.session_id = sessions.id)
 WHERE id IN (SELECT session_id FROM session_participants);
