-- A customer message that arrives while its conversation waits for an operator (an open
-- escalation) is forwarded to the operators' chat once: the message it forwards is its key.
ALTER TABLE operator_notifications ADD COLUMN message_id uuid UNIQUE;
