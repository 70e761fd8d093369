-- Answers a draft offers the customer, shown as buttons or a list where the channel can.
ALTER TABLE ai_suggestions ADD COLUMN choices jsonb NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN choices jsonb NOT NULL DEFAULT '[]';
