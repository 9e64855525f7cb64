-- Presence kept incrementally (same shape as migrations/sqlite/0007): a session's
-- participant_count and last_activity_at move by the change of one participant row (joined
-- +1, left -1, news that changes nothing 0) instead of being recounted from all the room's
-- rows on every webhook. The upsert's guard (newer-or-equal news wins) decides which news
-- changes a row, so duplicates and late news reach no trigger with a change. The trigger's
-- UPDATE locks the session row, so two replicas' changes to one room add up.
CREATE FUNCTION session_participants_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    delta BIGINT := NEW.present::int;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        delta := delta - OLD.present::int;
    END IF;
    UPDATE sessions
       SET participant_count = participant_count + delta,
           last_activity_at = GREATEST(last_activity_at, NEW.last_event_at)
     WHERE id = NEW.session_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER session_participants_inserted AFTER INSERT ON session_participants
    FOR EACH ROW EXECUTE FUNCTION session_participants_counted();

CREATE TRIGGER session_participants_updated AFTER UPDATE ON session_participants
    FOR EACH ROW
    WHEN (NEW.present <> OLD.present OR NEW.last_event_at > OLD.last_event_at)
    EXECUTE FUNCTION session_participants_counted();

-- Backfill: recount once the sessions that have participants.
UPDATE sessions
   SET participant_count = (SELECT COUNT(*) FROM session_participants p
                            WHERE p.session_id = sessions.id AND p.present),
       last_activity_at = (SELECT MAX(p.last_event_at) FROM session_participants p
                           WHERE p.session_id = sessions.id)
 WHERE id IN (SELECT session_id FROM session_participants);
