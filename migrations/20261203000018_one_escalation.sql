-- One open escalation per conversation: an operator's answer to the customer handles it, and
-- a conversation that escalates again while one is open adds to it instead of opening a
-- second (and sending the customer a second holding message). Older duplicates are
-- dismissed, the newest kept.
UPDATE escalation_events e SET status = 'dismissed', handled_at = now()
WHERE e.status = 'pending' AND EXISTS (
    SELECT 1 FROM escalation_events n
    WHERE n.conversation_id = e.conversation_id AND n.status = 'pending'
      AND (n.created_at, n.id) > (e.created_at, e.id));
CREATE UNIQUE INDEX escalation_events_one_open ON escalation_events (conversation_id)
    WHERE status = 'pending';
