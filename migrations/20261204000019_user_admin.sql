-- Operators come and go: an account can be disabled (it signs in no more, its sessions end)
-- and enabled again, or removed. A removed account keeps its row, because drafts, sends,
-- escalations and the audit log name it, but loses its password, its Telegram link and its
-- address, which a new account may then take.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
ALTER TABLE users ADD COLUMN removed_at timestamptz;
DROP INDEX users_tenant_email;
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, email) WHERE removed_at IS NULL;
