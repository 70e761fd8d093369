-- An operator notice is leased while it is posted, like an outbox row, instead of being held
-- under a row lock in a transaction left open across the platform call.
ALTER TABLE operator_notifications ADD COLUMN lease uuid, ADD COLUMN leased_until timestamptz;
