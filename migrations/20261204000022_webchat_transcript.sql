-- The web chat's welcome message (shown above an empty conversation, never stored as a
-- message), and the answers a sent message offered, kept with it so a reload shows them.
ALTER TABLE tenants ADD COLUMN widget_welcome text;
ALTER TABLE messages ADD COLUMN choices jsonb NOT NULL DEFAULT '[]';
