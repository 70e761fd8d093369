-- Which listener holds a channel's connection (a Telegram long poll, an IMAP mailbox, a
-- Discord Gateway session): only one may, and a standby takes over once the holder stops
-- renewing. `fence` grows with every new holder; cursor writes carry it, so a holder that
-- lost its lease (paused, cut off) cannot move a cursor its successor owns.
CREATE TABLE channel_leases (
    channel_id  uuid PRIMARY KEY REFERENCES channels (id) ON DELETE CASCADE,
    holder      uuid NOT NULL,
    fence       bigint NOT NULL,
    expires_at  timestamptz NOT NULL,
    acquired_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE channel_cursors
    ADD COLUMN fence bigint NOT NULL DEFAULT 0,
    -- Discord: the newest message id taken per Discord channel (text channel, DM or
    -- thread), as text keyed by the channel's id; the backfill after a reconnect reads on
    -- from there.
    ADD COLUMN discord_last_ids jsonb NOT NULL DEFAULT '{}';
