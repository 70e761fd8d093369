-- Conversations waiting for their quiet window before a draft. The AI worker acknowledges
-- the inbound job as soon as the message is stored and this row is written, so a waiting
-- conversation holds no broker delivery; any worker drafts it when it is due. A row is a
-- reminder to look, not the truth: the worker that claims it measures the quiet window
-- again from the messages. A claim is a lease, so a worker that dies mid-draft only
-- delays the draft until the lease runs out. A new customer message moves due_at and bumps
-- the generation but leaves a live lease alone: when its holder finishes, the row stays
-- for the new message.
CREATE TABLE pending_drafts (
    conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    due_at          timestamptz NOT NULL,
    generation      bigint NOT NULL DEFAULT 0,
    lease           uuid,
    leased_until    timestamptz,
    -- Claims since the last customer message; after too many failed ones the conversation
    -- goes to an operator instead.
    attempts        integer NOT NULL DEFAULT 0
);
CREATE INDEX pending_drafts_due ON pending_drafts (due_at);
