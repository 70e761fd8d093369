-- A customer whose answer waits for an operator's approval is told so after this long,
-- instead of silence (0: never). Sent once per waiting draft.
ALTER TABLE tenants
    ADD COLUMN checking_after_minutes integer NOT NULL DEFAULT 10
        CHECK (checking_after_minutes BETWEEN 0 AND 525600),
    ADD COLUMN checking_message text NOT NULL
        DEFAULT 'Thanks for your patience: we are checking this for you and will answer shortly.';
