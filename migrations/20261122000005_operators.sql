-- Operators: sign-in sessions, the tenant's operator settings, Telegram approvals and
-- the training samples that approvals, edits and rejections leave behind.

CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    user_id     uuid NOT NULL REFERENCES users (id),
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_hash  text NOT NULL UNIQUE,
    -- Sent back in X-CSRF-Token by the console on every cookie-authenticated change.
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

ALTER TABLE users ADD COLUMN telegram_user_id bigint UNIQUE;

ALTER TABLE tenants ADD COLUMN approval_ttl_minutes integer NOT NULL DEFAULT 1440 CHECK (approval_ttl_minutes > 0);
ALTER TABLE tenants ADD COLUMN takeover_minutes integer NOT NULL DEFAULT 30 CHECK (takeover_minutes > 0);
ALTER TABLE tenants ADD COLUMN escalation_sla_minutes integer NOT NULL DEFAULT 15 CHECK (escalation_sla_minutes > 0);
-- The operators' Telegram chat, served by one of the tenant's Telegram channels.
ALTER TABLE tenants ADD COLUMN operator_channel_id uuid REFERENCES channels (id);
ALTER TABLE tenants ADD COLUMN operator_chat_id bigint;

ALTER TABLE escalation_events ADD COLUMN notify_count integer NOT NULL DEFAULT 0;

-- Notifications to the operators' Telegram chat, sent by the dispatcher like the outbox.
CREATE TABLE operator_notifications (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id),
    channel_id          uuid NOT NULL REFERENCES channels (id),
    chat_id             bigint NOT NULL,
    conversation_id     uuid NOT NULL REFERENCES conversations (id),
    suggestion_id       uuid REFERENCES ai_suggestions (id),
    escalation_id       uuid REFERENCES escalation_events (id),
    body                text NOT NULL,
    -- The Telegram message, once sent: replies and button presses point back at it.
    telegram_message_id bigint,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX operator_notifications_due ON operator_notifications (next_attempt_at) WHERE status = 'pending';
CREATE UNIQUE INDEX operator_notifications_message ON operator_notifications (chat_id, telegram_message_id);

CREATE TABLE training_samples (
    id               uuid PRIMARY KEY,
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    conversation_id  uuid NOT NULL REFERENCES conversations (id),
    suggestion_id    uuid NOT NULL UNIQUE REFERENCES ai_suggestions (id),
    intent           text NOT NULL,
    customer_message text NOT NULL,
    draft            text NOT NULL,
    final_text       text,
    outcome          text NOT NULL CHECK (outcome IN ('approved', 'edited', 'rejected')),
    reason           text,
    user_id          uuid REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX training_samples_tenant ON training_samples (tenant_id, intent, created_at DESC);

ALTER TABLE human_actions DROP CONSTRAINT human_actions_action_check;
ALTER TABLE human_actions ADD CONSTRAINT human_actions_action_check CHECK (action IN
    ('approve', 'edit', 'reject', 'escalate', 'takeover', 'release', 'message'));

-- Who approved a send (an approval, an operator's own message or a replay): such a send
-- is a human decision, so a later status change does not turn it stale.
ALTER TABLE outbox ADD COLUMN approved_by uuid REFERENCES users (id);
